"""WeChat Pay API v3: the signed, verifying client, and the merchant transfers that pay promoters."""

from .client import MerchantKeys, ReplayGuard, WeChatPayClient, merchant_keys
from .errors import CallbackRejected, PayError, PayRefused, PaySignatureRejected, PayUnclear
from .transfer_bills import BILL_FINISHED, TRANSFER_NOTIFY_PATH, Bill, Transfer, TransferBills, TransferScene, bill_of

__all__ = [
    "BILL_FINISHED",
    "TRANSFER_NOTIFY_PATH",
    "Bill",
    "CallbackRejected",
    "MerchantKeys",
    "PayError",
    "PayRefused",
    "PaySignatureRejected",
    "PayUnclear",
    "ReplayGuard",
    "Transfer",
    "TransferBills",
    "TransferScene",
    "WeChatPayClient",
    "bill_of",
    "merchant_keys",
]
