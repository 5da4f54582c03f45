"""H5 share links: a visitor opens a promoter's signed link inside WeChat and is bound to the promoter.

A web page learns who is visiting only through WeChat's web authorization
(网页授权): the link sends the browser to WeChat's authorize page (scope
`snsapi_base`, silent), which sends it back to the link's bind URL with a
one-time code, exchanged here for the visitor's official-account openid.
The link's signature travels as the `state` and is checked again on the way
back, so a made-up callback binds nobody. Every refusal of the link itself
happens before anything is written. Each opening of a good link counts as a
visit in the funnel, for the poster template the link names, which the bind
URL carries on to the bind.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from wechat import WeChatClient, WeChatError
from wechat.api.web_auth import SPENT_CODE_ERRCODES
from distribution import errors
from distribution.binding import BindSource
from distribution.rate_limits import Action
from distribution.scene import is_member_id
from distribution.share_links import share_bind_url, verify_share_signature
from services.identity import IdentityService
from services.posters import ShareLinkSettings
from services.relations import BindOutcome, RelationService
from services.risk import Origin
from stores.members import MemberStore


class LinkProblem(Enum):
    """Why a share link, or WeChat's callback to it, cannot be followed; the value says so to the visitor."""

    LINKS_OFF = "分享链接未启用。"
    UNKNOWN_PROMOTER = "这个分享链接不存在。"
    FORGED = "这个分享链接不完整或已被改动，请向分享人重新获取。"
    # No code, or one WeChat will not exchange: made up, used by a reload, expired.
    SPENT_CODE = "页面已失效，请重新打开分享链接。"


class ShareLinkRefused(errors.DomainError):
    """A link (or WeChat's callback to it) that cannot be followed; each kind says why to the visitor."""

    problem: LinkProblem

    def __init__(self) -> None:
        super().__init__(self.problem.value)


class LinksOff(ShareLinkRefused, errors.NotFound):
    problem = LinkProblem.LINKS_OFF
    code = "share_links_off"


class UnknownPromoter(ShareLinkRefused, errors.NotFound):
    problem = LinkProblem.UNKNOWN_PROMOTER
    code = "unknown_promoter"


class ForgedLink(ShareLinkRefused, errors.Forbidden):
    problem = LinkProblem.FORGED
    code = "forged_link"


class SpentCode(ShareLinkRefused, errors.Invalid):
    problem = LinkProblem.SPENT_CODE
    code = "spent_code"


class ShareLinkService:
    def __init__(self, links: ShareLinkSettings, open_base: str, oa: WeChatClient, members: MemberStore,
                 identity: IdentityService, relations: RelationService):
        self.links = links
        self.open_base = open_base
        self.oa = oa
        self.members = members
        self.identity = identity
        self.relations = relations
        self.funnel = relations.funnel

    async def authorize_url(self, promoter_id: str, signature: str | None, template_id: str | None,
                            at: datetime) -> str:
        """Where to send the visitor of a good link: WeChat's authorize page, coming back to the bind URL."""
        await self._promoter(promoter_id, signature)
        template_id = await self.funnel.offered_template(template_id)
        bind_url = share_bind_url(self.links.public_base_url, promoter_id, template_id)
        await self.funnel.visited(promoter_id, template_id, at)
        return self.oa.web_auth.authorize_url(self.open_base, bind_url, state=signature)

    async def bind_visitor(self, promoter_id: str, state: str | None, code: str | None, at: datetime,
                           template_id: str | None, ip: str | None = None) -> BindOutcome:
        """Bind whoever WeChat says `code` stands for to the promoter; a refusal by the rules is an outcome
        (logged with its reason), not an error. A `WeChatError` other than a spent code means WeChat is down.
        `template_id`: the poster template the link named; `ip`: the visitor's address, whose binds are rate
        limited (RateLimited before anything is written)."""
        promoter = await self._promoter(promoter_id, state)
        if self.relations.limits is not None:
            await self.relations.limits.check(Action.BIND, ip=ip)
        if not code:
            raise SpentCode()
        try:
            authorized = await self.oa.web_auth.code_to_access_token(code)
        except WeChatError as error:
            if error.errcode in SPENT_CODE_ERRCODES:
                raise SpentCode() from None
            raise
        openid = authorized["openid"]
        upserted = await self.members.join_oa_visitor(openid, at)
        visitor = upserted.member
        if authorized.get("unionid"):
            await self.identity.join_oa_unionid(visitor, authorized["unionid"])
            visitor = await self.members.by_oa_openid(openid)  # a fold may have moved the openid to another member
        created = upserted.created and visitor["_id"] == upserted.member["_id"]
        return await self.relations.bind(visitor, promoter["_id"], BindSource.SHARE_LINK, at,
                                         created_by_this_push=created,
                                         template_id=await self.funnel.offered_template(template_id),
                                         origin=Origin(ip=ip))

    async def _promoter(self, promoter_id: str, signature: str | None) -> dict:
        """The promoter a link names, once the link is known good: links on, well formed, signed, someone."""
        secret = self.links.secret
        if not (self.links.public_base_url and secret):
            raise LinksOff()
        if not is_member_id(promoter_id):
            raise UnknownPromoter()
        if not verify_share_signature(promoter_id, signature, secret):
            raise ForgedLink()
        promoter = await self.members.get(promoter_id)
        if promoter is None:
            raise UnknownPromoter()
        return promoter
