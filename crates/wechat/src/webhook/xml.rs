//! The XML WeChat pushes: a flat `<xml>` whose children hold CDATA or plain text, read with
//! quick-xml under size limits, with no DTD and no entities beyond the five predefined ones.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;

use super::WebhookError;

/// Largest body accepted, in bytes.
pub const MAX_XML_BYTES: usize = 64 * 1024;
/// Most elements accepted, counting `<xml>` and nested ones.
pub const MAX_ELEMENTS: usize = 200;

/// The top-level children of `<xml>`, by element name.
///
/// A leaf's value is its text with CDATA kept verbatim, the five predefined and character
/// references resolved, and the whitespace around it (outside CDATA) trimmed. An element with
/// children (e.g. `SubscribeMsgPopupEvent` holding `<List>` items) keeps its raw inner XML as
/// the value, to be parsed by whoever needs it. Attributes are ignored. Refused: a body over
/// [`MAX_XML_BYTES`] or with more than [`MAX_ELEMENTS`] elements, a `<!DOCTYPE`, any other
/// entity, a root other than `<xml>`, a repeated top-level name, and text directly in `<xml>`.
pub fn parse_fields(xml: &str) -> Result<BTreeMap<String, String>, WebhookError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(WebhookError::TooLarge(format!(
            "body is over the limit of {MAX_XML_BYTES} bytes"
        )));
    }
    let mut parser = Parser {
        reader: Reader::from_str(xml),
        input: xml,
        elements: 0,
    };
    let mut fields = None;
    loop {
        match parser.next()? {
            Event::Start(start) => {
                parser.count_element()?;
                if fields.is_some() || start.name().as_ref() != b"xml" {
                    return Err(malformed("the document must be one <xml> element"));
                }
                fields = Some(parser.children()?);
            }
            Event::Empty(start) => {
                parser.count_element()?;
                if fields.is_some() || start.name().as_ref() != b"xml" {
                    return Err(malformed("the document must be one <xml> element"));
                }
                fields = Some(BTreeMap::new());
            }
            Event::Text(text) if is_blank(&text) => {}
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
            _ => return Err(malformed("content outside <xml>")),
        }
    }
    fields.ok_or_else(|| malformed("no <xml> element"))
}

/// The fields every push shares, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `ToUserName`: the account's original id (`gh_…`) or the Mini Program's.
    pub to_user: String,
    /// `FromUserName`: the sender's openid.
    pub from_user: String,
    /// `CreateTime`: seconds since the epoch.
    pub create_time: i64,
    /// `MsgType`: `text`, `image`, …, or `event`.
    pub msg_type: String,
    /// `Event`, for event pushes (`subscribe`, `TEMPLATESENDJOBFINISH`, …).
    pub event: Option<String>,
    /// `EventKey`, when the event carries one.
    pub event_key: Option<String>,
    /// `MsgId`, or `MsgID` as some events spell it.
    pub msg_id: Option<String>,
    /// `Encrypt`, present in compatibility mode next to the plain fields.
    pub encrypt: Option<String>,
}

impl Envelope {
    /// Parses a push body (or a decrypted safe-mode message) with [`parse_fields`].
    pub fn parse(xml: &str) -> Result<Self, WebhookError> {
        Self::from_fields(&parse_fields(xml)?)
    }

    /// The typed view of parsed fields; `ToUserName`, `FromUserName`, `CreateTime` (an
    /// integer) and `MsgType` are required.
    pub fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self, WebhookError> {
        let required = |name: &str| {
            fields
                .get(name)
                .cloned()
                .ok_or_else(|| WebhookError::MalformedXml(format!("missing <{name}>")))
        };
        let optional = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
        let create_time = required("CreateTime")?
            .parse()
            .map_err(|_| malformed("<CreateTime> is not an integer"))?;
        Ok(Self {
            to_user: required("ToUserName")?,
            from_user: required("FromUserName")?,
            create_time,
            msg_type: required("MsgType")?,
            event: optional("Event"),
            event_key: optional("EventKey"),
            msg_id: optional("MsgId").or_else(|| optional("MsgID")),
            encrypt: optional("Encrypt"),
        })
    }
}

/// The `<{item}>` elements of an element's raw inner XML (as [`parse_fields`] keeps it for an
/// element with children, e.g. `SubscribeMsgPopupEvent`), each as its children by name. The
/// same limits apply; anything but `<{item}>` elements (and blank text) is refused.
pub fn parse_items(inner: &str, item: &str) -> Result<Vec<BTreeMap<String, String>>, WebhookError> {
    if inner.len() > MAX_XML_BYTES {
        return Err(WebhookError::TooLarge(format!(
            "body is over the limit of {MAX_XML_BYTES} bytes"
        )));
    }
    let mut parser = Parser {
        reader: Reader::from_str(inner),
        input: inner,
        elements: 0,
    };
    let mut items = Vec::new();
    loop {
        match parser.next()? {
            Event::Start(start) if start.name().as_ref() == item.as_bytes() => {
                parser.count_element()?;
                items.push(parser.children()?);
            }
            Event::Text(text) if is_blank(&text) => {}
            Event::Comment(_) => {}
            Event::Eof => return Ok(items),
            _ => {
                return Err(WebhookError::MalformedXml(format!(
                    "expected <{item}> items"
                )));
            }
        }
    }
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    input: &'a str,
    elements: usize,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Result<Event<'a>, WebhookError> {
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(malformed("<!DOCTYPE> is not allowed")),
            Ok(event) => Ok(event),
            Err(e) => Err(WebhookError::MalformedXml(e.to_string())),
        }
    }

    fn count_element(&mut self) -> Result<(), WebhookError> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(WebhookError::TooLarge(format!(
                "more than the limit of {MAX_ELEMENTS} elements"
            )));
        }
        Ok(())
    }

    /// Reads the children of `<xml>` up to `</xml>`.
    fn children(&mut self) -> Result<BTreeMap<String, String>, WebhookError> {
        let mut fields = BTreeMap::new();
        loop {
            let (name, value) = match self.next()? {
                Event::Start(start) => {
                    self.count_element()?;
                    (element_name(start.name().as_ref())?, self.value()?)
                }
                Event::Empty(start) => {
                    self.count_element()?;
                    (element_name(start.name().as_ref())?, String::new())
                }
                Event::End(_) => return Ok(fields),
                Event::Text(text) if is_blank(&text) => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Eof => return Err(malformed("<xml> is not closed")),
                _ => return Err(malformed("text directly inside <xml>")),
            };
            if fields.contains_key(&name) {
                return Err(WebhookError::MalformedXml(format!(
                    "<{name}> appears twice"
                )));
            }
            fields.insert(name, value);
        }
    }

    /// Reads one top-level child's content up to its end tag.
    fn value(&mut self) -> Result<String, WebhookError> {
        let content_start = self.position();
        // (verbatim, text): CDATA and references are not trimmed.
        let mut pieces: Vec<(bool, String)> = Vec::new();
        let mut depth = 0usize;
        let mut nested = false;
        loop {
            let before = self.position();
            match self.next()? {
                Event::Text(text) => {
                    let text = text.xml10_content().map_err(|e| malformed_e(&e))?;
                    pieces.push((false, text.into_owned()));
                }
                Event::CData(cdata) => {
                    let text = cdata.decode().map_err(|e| malformed_e(&e))?;
                    pieces.push((true, text.into_owned()));
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = reference.decode().map_err(|e| malformed_e(&e))?;
                            resolve_xml_entity(&name)
                                .ok_or_else(|| {
                                    WebhookError::MalformedXml(format!(
                                        "entity &{name}; is not allowed"
                                    ))
                                })?
                                .to_owned()
                        }
                        Err(e) => return Err(malformed_e(&e)),
                    };
                    pieces.push((true, resolved));
                }
                Event::Start(_) => {
                    self.count_element()?;
                    depth += 1;
                    nested = true;
                }
                Event::Empty(_) => {
                    self.count_element()?;
                    nested = true;
                }
                Event::End(_) if depth > 0 => depth -= 1,
                Event::End(_) if nested => {
                    return Ok(self.input[content_start..before].to_owned());
                }
                Event::End(_) => return Ok(join(pieces)),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(malformed("an element is not closed")),
                _ => return Err(malformed("unexpected markup inside an element")),
            }
        }
    }

    fn position(&self) -> usize {
        // The reader reads from `input`, so its position is an index into it.
        usize::try_from(self.reader.buffer_position()).unwrap_or(self.input.len())
    }
}

/// Joins a leaf's pieces, trimming XML whitespace only at the ends and only outside CDATA.
fn join(pieces: Vec<(bool, String)>) -> String {
    let last = pieces.len().saturating_sub(1);
    let mut out = String::new();
    for (i, (verbatim, piece)) in pieces.iter().enumerate() {
        let mut piece = piece.as_str();
        if !verbatim && i == 0 {
            piece = piece.trim_start_matches(is_xml_space);
        }
        if !verbatim && i == last {
            piece = piece.trim_end_matches(is_xml_space);
        }
        out.push_str(piece);
    }
    out
}

fn element_name(raw: &[u8]) -> Result<String, WebhookError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| malformed("an element name is not UTF-8"))
}

fn is_blank(text: &[u8]) -> bool {
    text.iter().all(|&b| is_xml_space(char::from(b)))
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn malformed(why: &str) -> WebhookError {
    WebhookError::MalformedXml(why.to_owned())
}

fn malformed_e(e: &dyn std::fmt::Display) -> WebhookError {
    WebhookError::MalformedXml(e.to_string())
}

#[cfg(test)]
mod tests;
