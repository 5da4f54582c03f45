"""What can go wrong talking to WeChat Pay, sorted by what the caller may conclude from it."""

from __future__ import annotations


class PayError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PayUnclear(PayError):
    """No answer, a timeout, a 5xx, or an answer that does not verify: the request may or may not have taken
    effect. Never a reason to give up on a payout, nor to send it under a new number: ask again (query)."""


class PayRefused(PayError):
    """A verified refusal (4xx): WeChat Pay did not do it. `retryable` when the same request may succeed later."""

    RETRYABLE = frozenset({"NOT_ENOUGH", "FREQUENCY_LIMITED"})

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code, message)
        self.status = status
        self.retryable = code in self.RETRYABLE


class PaySignatureRejected(PayError):
    """401: WeChat Pay refused our signature. A configuration error (merchant id, certificate serial or private
    key), not an unclear answer: nothing was done, and nothing will be until the configuration is fixed."""


class CallbackRejected(Exception):
    """A callback that changes nothing: `status` is what to answer (401: not WeChat Pay's signature, or too old;
    400: replayed, or not a resource that opens with our APIv3 key)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason
