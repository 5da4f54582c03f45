"""Web plumbing the merchant API and the mini-program API share: the base handler and its one error map, the
answer models, paging, the lists and the poster both serve, /openapi.json and /docs."""
