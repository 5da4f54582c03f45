"""Counting through the kept children gives what `labels()` gives, past the number of children kept too."""

from services.metrics import CACHED_CHILDREN, Metrics


def sample(metrics: Metrics, name: str, labels: dict) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_requests_and_pushes_are_counted_per_label_set():
    metrics = Metrics()
    for status in (200, 200, 403):
        metrics.count_request("WeChatPushHandler", "POST", status)
    metrics.observe_push("text", 0.002)
    metrics.observe_push("subscribe", 0.02)
    metrics.observe_push("text", 0.3)
    labels = {"route": "WeChatPushHandler", "method": "POST"}
    assert sample(metrics, "http_requests_total", {**labels, "status": "200"}) == 2
    assert sample(metrics, "http_requests_total", {**labels, "status": "403"}) == 1
    assert sample(metrics, "wechat_push_seconds_count", {"kind": "text"}) == 2
    assert sample(metrics, "wechat_push_seconds_bucket", {"kind": "text", "le": "0.005"}) == 1
    assert sample(metrics, "wechat_push_seconds_count", {"kind": "subscribe"}) == 1


def test_label_sets_past_the_kept_ones_still_count():
    metrics = Metrics()
    for number in range(CACHED_CHILDREN + 5):
        metrics.count_request(f"Handler{number}", "GET", 200)
    metrics.count_request(f"Handler{CACHED_CHILDREN + 4}", "GET", 200)
    last = {"route": f"Handler{CACHED_CHILDREN + 4}", "method": "GET", "status": "200"}
    assert sample(metrics, "http_requests_total", last) == 2
    assert len(metrics._children) == CACHED_CHILDREN
