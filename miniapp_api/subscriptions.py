"""POST /api/v1/subscriptions: the one-time consents wx.requestSubscribeMessage obtained."""

from __future__ import annotations

from miniapp_api.auth import MiniappHandler
from miniapp_api.requests import SubscriptionConsents
from web.models import SubscriptionCounts
from web.openapi import Reply, operation


class SubscriptionsHandler(MiniappHandler):
    @operation("Record accepted subscription-message consents: each allows one message", body=SubscriptionConsents,
               responses={200: Reply("Unused consents per template asked for", SubscriptionCounts)})
    async def post(self) -> None:
        consents = self.parse_body(SubscriptionConsents)
        notifications = self.runtime.notifications
        await notifications.add_consents(self.member["_id"], list(consents.accepted))
        counts = {template: await notifications.unused_consents(self.member["_id"], template)
                  for template in consents.template_ids}
        self.write_model(SubscriptionCounts(consents=counts))
