"""Web plumbing that the merchant API, the console and the mini-program API share: the base handler and its
error map, authentication, paging and the OpenAPI document."""
