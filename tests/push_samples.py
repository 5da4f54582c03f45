"""One sample of every push the official account can receive, in the shapes
WeChat documents (and wechatpy's / WeRoBot's test suites use)."""

HEAD = "<ToUserName><![CDATA[gh_sandbox]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{at}</CreateTime>"


def _event(name: str, extra: str = "") -> str:
    return f"<xml>{HEAD}<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{name}]]></Event>{extra}</xml>"


def _message(msg_type: str, extra: str) -> str:
    return f"<xml>{HEAD}<MsgType><![CDATA[{msg_type}]]></MsgType>{extra}<MsgId>{{msg_id}}</MsgId></xml>"


MESSAGES = {
    "text": _message("text", "<Content><![CDATA[this is a test]]></Content>"),
    "image": _message("image", "<PicUrl><![CDATA[http://mmbiz.qpic.cn/x.jpg]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId>"),
    "voice": _message("voice", "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition>"),
    "video": _message("video", "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>"),
    "shortvideo": _message("shortvideo", "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>"),
    "location": _message("location", "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label>"),
    "link": _message("link", "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[https://mp.weixin.qq.com]]></Url>"),
    "miniprogrampage": _message("miniprogrampage", "<Title><![CDATA[小程序]]></Title><AppId><![CDATA[wxapp]]></AppId><PagePath><![CDATA[pages/index]]></PagePath><ThumbUrl><![CDATA[http://x/y.jpg]]></ThumbUrl><ThumbMediaId><![CDATA[t]]></ThumbMediaId>"),
}

EVENTS = {
    "subscribe": _event("subscribe"),
    "subscribe_with_scene": _event("subscribe", "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"),
    "unsubscribe": _event("unsubscribe"),
    "scan": _event("SCAN", "<EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"),
    "location_event": _event("LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>"),
    "click": _event("CLICK", "<EventKey><![CDATA[EVENTKEY]]></EventKey>"),
    "view": _event("VIEW", "<EventKey><![CDATA[http://www.example.com/]]></EventKey><MenuId>1</MenuId>"),
    "view_miniprogram": _event("view_miniprogram", "<EventKey><![CDATA[pages/index/index]]></EventKey><MenuId>1</MenuId>"),
    "scancode_push": _event("scancode_push", "<EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>"),
    "scancode_waitmsg": _event("scancode_waitmsg", "<EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[2]]></ScanResult></ScanCodeInfo>"),
    "pic_sysphoto": _event("pic_sysphoto", "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo>"),
    "pic_photo_or_album": _event("pic_photo_or_album", "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[5a75aaca956d97be686719218f275c6b]]></PicMd5Sum></item></PicList></SendPicsInfo>"),
    "pic_weixin": _event("pic_weixin", "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[5a75aaca956d97be686719218f275c6b]]></PicMd5Sum></item></PicList></SendPicsInfo>"),
    "location_select": _event("location_select", "<EventKey><![CDATA[6]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]></Location_X><Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale><Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label><Poiname><![CDATA[]]></Poiname></SendLocationInfo>"),
    "templatesendjobfinish": _event("TEMPLATESENDJOBFINISH", "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>"),
    "masssendjobfinish": _event("MASSSENDJOBFINISH", "<MsgID>1988</MsgID><Status><![CDATA[sendsuccess]]></Status><TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>"),
    "subscribe_msg_popup_event": _event("subscribe_msg_popup_event", "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent>"),
    "subscribe_msg_change_event": _event("subscribe_msg_change_event", "<SubscribeMsgChangeEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString></List></SubscribeMsgChangeEvent>"),
    "subscribe_msg_sent_event": _event("subscribe_msg_sent_event", "<SubscribeMsgSentEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><MsgID>1700827132819554304</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent>"),
    "card_pass_check": _event("card_pass_check", "<CardId><![CDATA[pFS7Fjg8kV1IdDz01r4SQwMkuCKc]]></CardId><RefuseReason><![CDATA[非法代制]]></RefuseReason>"),
    "user_get_card": _event("user_get_card", "<CardId><![CDATA[po2VNuCuRo-8sxxxxxxxxxxx]]></CardId><IsGiveByFriend>0</IsGiveByFriend><UserCardCode><![CDATA[226009850808]]></UserCardCode><OuterStr><![CDATA[12b]]></OuterStr>"),
    "qualification_verify_success": _event("qualification_verify_success", "<ExpiredTime>1442401156</ExpiredTime>"),
    "poi_check_notify": _event("poi_check_notify", "<UniqId><![CDATA[123adb]]></UniqId><PoiId><![CDATA[123123]]></PoiId><Result><![CDATA[fail]]></Result><Msg><![CDATA[xxxxxx]]></Msg>"),
    "wificonnected": _event("WifiConnected", "<ConnectTime>0</ConnectTime><ExpireTime>0</ExpireTime><VendorId><![CDATA[3001224419]]></VendorId><PlaceId><![CDATA[1234]]></PlaceId><DeviceNo><![CDATA[00:1f:7a:ad:5c:a8]]></DeviceNo>"),
    "kf_create_session": _event("kf_create_session", "<KfAccount><![CDATA[test1@test]]></KfAccount>"),
    "publishjobfinish": _event("PUBLISHJOBFINISH", "<PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status></PublishEventInfo>"),
    "some_future_event": _event("some_future_event", "<Whatever>1</Whatever>"),
}

UNKNOWN_MESSAGE = _message("hologram", "<Depth>3</Depth>")


def fill(template: str, openid: str, at: int, msg_id: int = 6054768590064713728) -> str:
    return template.format(openid=openid, at=at, msg_id=msg_id)
