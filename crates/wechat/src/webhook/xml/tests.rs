use super::*;

const SUBSCRIBE: &str = "<xml>
  <ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
  <FromUserName><![CDATA[openid_alice]]></FromUserName>
  <CreateTime>1700000000</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[subscribe]]></Event>
  <EventKey><![CDATA[qrscene_7]]></EventKey>
</xml>";

#[test]
fn a_follow_event_parses_into_fields_and_an_envelope() {
    let fields = parse_fields(SUBSCRIBE).unwrap();
    assert_eq!(fields.len(), 6);
    assert_eq!(fields["CreateTime"], "1700000000");
    let envelope = Envelope::from_fields(&fields).unwrap();
    assert_eq!(
        envelope,
        Envelope {
            to_user: "gh_123456789abc".into(),
            from_user: "openid_alice".into(),
            create_time: 1_700_000_000,
            msg_type: "event".into(),
            event: Some("subscribe".into()),
            event_key: Some("qrscene_7".into()),
            msg_id: None,
            encrypt: None,
        }
    );
}

#[test]
fn values_keep_cdata_verbatim_and_resolve_predefined_entities() {
    let fields = parse_fields(
        "<?xml version=\"1.0\"?><!-- hi --><xml>\
         <Content><![CDATA[  <b>a & b</b>  ]]></Content>\
         <Text> x &lt; y &amp;&#x4e2d; </Text>\
         <Padded>  <![CDATA[video]]></Padded>\
         <Empty/><Blank></Blank></xml>\n",
    )
    .unwrap();
    assert_eq!(fields["Content"], "  <b>a & b</b>  ");
    assert_eq!(fields["Text"], "x < y &中");
    assert_eq!(fields["Padded"], "video");
    assert_eq!(fields["Empty"], "");
    assert_eq!(fields["Blank"], "");
}

#[test]
fn a_nested_element_keeps_its_raw_inner_xml() {
    let popup = "<List><TemplateId><![CDATA[t1]]></TemplateId>\
                 <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString></List>\
                 <List><TemplateId><![CDATA[t2]]></TemplateId></List>";
    let xml = format!(
        "<xml><MsgType>event</MsgType><SubscribeMsgPopupEvent>{popup}</SubscribeMsgPopupEvent></xml>"
    );
    let fields = parse_fields(&xml).unwrap();
    assert_eq!(fields["SubscribeMsgPopupEvent"], popup);
    assert_eq!(fields.len(), 2);
}

#[test]
fn a_doctype_is_refused() {
    let xxe = "<!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
               <xml><Content>&xxe;</Content></xml>";
    let err = parse_fields(xxe).unwrap_err();
    assert!(
        matches!(&err, WebhookError::MalformedXml(m) if m.contains("DOCTYPE")),
        "{err}"
    );
}

#[test]
fn a_custom_entity_is_refused() {
    let err = parse_fields("<xml><Content>&xxe;</Content></xml>").unwrap_err();
    assert!(
        matches!(&err, WebhookError::MalformedXml(m) if m.contains("&xxe;")),
        "{err}"
    );
    let nested = "<xml><E><List>&xxe;</List></E></xml>";
    assert!(matches!(
        parse_fields(nested),
        Err(WebhookError::MalformedXml(_))
    ));
}

#[test]
fn a_body_over_64_kib_is_refused() {
    let filler = "a".repeat(MAX_XML_BYTES);
    let err = parse_fields(&format!("<xml><Content>{filler}</Content></xml>")).unwrap_err();
    assert!(
        matches!(&err, WebhookError::TooLarge(m) if m.contains("65536 bytes")),
        "{err}"
    );
    // Just under the limit is fine.
    let fits = "a".repeat(MAX_XML_BYTES - "<xml><C></C></xml>".len());
    assert!(parse_fields(&format!("<xml><C>{fits}</C></xml>")).is_ok());
}

#[test]
fn more_than_200_elements_are_refused() {
    let items = |n: usize| {
        (0..n)
            .map(|i| format!("<E{i}>1</E{i}>"))
            .collect::<String>()
    };
    // <xml> and 199 children: 200 elements.
    assert_eq!(
        parse_fields(&format!("<xml>{}</xml>", items(199)))
            .unwrap()
            .len(),
        199
    );
    let err = parse_fields(&format!("<xml>{}</xml>", items(200))).unwrap_err();
    assert!(
        matches!(&err, WebhookError::TooLarge(m) if m.contains("200 elements")),
        "{err}"
    );
    // Nested elements count too.
    let nested = format!("<xml><List>{}</List></xml>", "<i/>".repeat(199));
    assert!(matches!(
        parse_fields(&nested),
        Err(WebhookError::TooLarge(_))
    ));
}

#[test]
fn anything_but_one_flat_xml_root_is_refused() {
    for bad in [
        "",
        "not xml",
        "<root><A>1</A></root>",
        "<xml><A>1</A></xml><xml/>",
        "<xml><A>1</A>",
        "<xml><A>1</B></xml>",
        "<xml>stray text<A>1</A></xml>",
        "<xml><A>1</A><A>2</A></xml>",
        "<xml><A>1</A></xml>trailing",
    ] {
        assert!(
            matches!(parse_fields(bad), Err(WebhookError::MalformedXml(_))),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn an_envelope_needs_its_common_fields() {
    let missing = "<xml><ToUserName>gh</ToUserName><CreateTime>1</CreateTime>\
                   <MsgType>text</MsgType></xml>";
    let err = Envelope::parse(missing).unwrap_err();
    assert_eq!(
        err,
        WebhookError::MalformedXml("missing <FromUserName>".into())
    );
    let bad_time = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>\
                    <CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>";
    assert!(matches!(
        Envelope::parse(bad_time),
        Err(WebhookError::MalformedXml(_))
    ));
    // The safe-mode outer body has only ToUserName and Encrypt: read it with parse_fields.
    let outer =
        "<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[abc]]></Encrypt></xml>";
    assert!(Envelope::parse(outer).is_err());
    assert_eq!(parse_fields(outer).unwrap()["Encrypt"], "abc");
}
