"""WeChat Pay API v3: the signed, verifying client, the merchant transfers that pay promoters, and the JSAPI
payments and refunds of the mini-program's checkout."""

from .client import MerchantKeys, ReplayGuard, WeChatPayClient, merchant_keys
from .errors import CallbackRejected, PayError, PayRefused, PaySignatureRejected, PayUnclear
from .refunds import REFUND_EVENTS, REFUND_NOTIFY_PATH, Refund, Refunds, refund_of
from .transactions import PAYMENT_NOTIFY_PATH, TRANSACTION_SUCCESS, Transaction, Transactions, transaction_of
from .transfer_bills import BILL_FINISHED, TRANSFER_NOTIFY_PATH, Bill, Transfer, TransferBills, TransferScene, bill_of

__all__ = [
    "BILL_FINISHED",
    "PAYMENT_NOTIFY_PATH",
    "REFUND_EVENTS",
    "REFUND_NOTIFY_PATH",
    "TRANSACTION_SUCCESS",
    "TRANSFER_NOTIFY_PATH",
    "Bill",
    "CallbackRejected",
    "MerchantKeys",
    "PayError",
    "PayRefused",
    "PaySignatureRejected",
    "PayUnclear",
    "Refund",
    "Refunds",
    "ReplayGuard",
    "Transaction",
    "Transactions",
    "Transfer",
    "TransferBills",
    "TransferScene",
    "WeChatPayClient",
    "bill_of",
    "merchant_keys",
    "refund_of",
    "transaction_of",
]
