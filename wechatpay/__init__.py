"""WeChat Pay: the merchant's payouts to promoters."""
