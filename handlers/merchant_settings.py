"""GET|PUT /api/merchant/v1/settings/<name>: each kind of merchant rule at a path of its own, so that
/openapi.json shows every kind's full schema; and the preview of candidate commission rules."""

from __future__ import annotations

from distribution.preview import CommissionPreviewRequest, preview_commissions
from distribution.records import Record
from handlers.merchant import MerchantHandler
from services.merchant_settings import SETTINGS_KINDS, settings_kind
from web.models import CommissionPreview
from web.openapi import Reply, operation

SETTINGS_PATH = "/api/merchant/v1/settings"


def settings_handler(name: str, kind: type[Record]) -> type[MerchantHandler]:
    class SettingsHandler(MerchantHandler):
        @operation(f"The merchant's {name} settings (their defaults until set)",
                   responses={200: Reply(f"The {name} settings", kind)})
        async def get(self) -> None:
            self.write_model(await self.runtime.merchant_settings.get(kind))

        @operation(f"Replace the merchant's {name} settings; fields left out take their defaults", body=kind,
                   responses={200: Reply(f"The {name} settings as stored", kind)})
        async def put(self) -> None:
            value = self.parse_body(kind)
            before = await self.runtime.merchant_settings.replace(value)
            await self.audit(f"settings.{name}", "settings", name, before.to_dict(), value.to_dict())
            self.write_model(value)

    SettingsHandler.__name__ = SettingsHandler.__qualname__ = f"{kind.__name__}Handler"
    return SettingsHandler


class CommissionPreviewHandler(MerchantHandler):
    @operation("Who would earn what on one item under candidate commission rules, before they are saved",
               description="Runs the calculation a paid order runs, on the buyer's chain as described: nothing is "
                           "stored. Invalid rules are refused as PUT refuses them, the field named under `rules`.",
               body=CommissionPreviewRequest, responses={200: Reply("Each level's commission", CommissionPreview)})
    async def post(self) -> None:
        request = self.parse_body(CommissionPreviewRequest)
        self.write_model(CommissionPreview.of(preview_commissions(request.rules, request)))


SETTINGS_ROUTES = [
    *((f"{SETTINGS_PATH}/{name}", settings_handler(name, kind)) for name, kind in SETTINGS_KINDS.items()),
    (f"{SETTINGS_PATH}/commission/preview", CommissionPreviewHandler),
]


class UnknownSettingsHandler(MerchantHandler):
    """Any other name under the settings path: a 404 naming the kinds there are."""

    async def prepare(self) -> None:
        await super().prepare()
        settings_kind(self.path_kwargs["name"])


# After SETTINGS_ROUTES: it takes the names they do not.
UNKNOWN_SETTINGS_ROUTE = (rf"{SETTINGS_PATH}/(?P<name>[^/]+)", UnknownSettingsHandler)
