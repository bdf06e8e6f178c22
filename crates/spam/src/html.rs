//! A small, forgiving reading of HTML mail bodies: the text a reader sees, the text hidden
//! from them, text in huge fonts, links with the text they show, and images.
//!
//! It follows the tokenization of the HTML Living Standard (§13.2.5) only as far as spam
//! checks need: tags and their attributes, comments, raw-text elements (`script`, `style`)
//! and character references. Work is linear in the input, which is cut at [`MAX_HTML`].

use crate::text::truncate;

/// The most HTML read from one part, in bytes.
pub(crate) const MAX_HTML: usize = 1024 * 1024;
/// The most visible text kept, in bytes.
const MAX_VISIBLE: usize = 256 * 1024;
/// The most links and images kept.
const MAX_LINKS: usize = 500;
/// The deepest element nesting followed; deeper elements are read as text of their parent.
const MAX_DEPTH: usize = 256;
/// The most text kept for one link.
const MAX_LINK_TEXT: usize = 256;

/// A link: where it goes and the text it shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Link {
    pub href: String,
    pub text: String,
}

/// What the reading of one HTML body found.
#[derive(Debug, Default)]
pub(crate) struct Html {
    /// The text a reader sees, character references decoded, a space for each block element.
    pub visible: String,
    /// Letters and digits inside elements hidden from the reader (`display:none`,
    /// `visibility:hidden`, a zero or one-pixel font, `opacity:0`, the `hidden` attribute).
    pub hidden_chars: usize,
    /// Letters and digits shown in a huge font (`<font size=6>` and more, 48px, 36pt, 3em).
    pub huge_chars: usize,
    /// The links (`<a href>`, `<area href>`), at most [`MAX_LINKS`].
    pub links: Vec<Link>,
    /// The `src` of the images (`<img>`), at most [`MAX_LINKS`].
    pub images: Vec<String>,
}

struct Open {
    name: String,
    hidden: bool,
    huge: bool,
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "br" | "p"
            | "div"
            | "td"
            | "th"
            | "tr"
            | "li"
            | "ul"
            | "ol"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "table"
            | "blockquote"
            | "hr"
            | "center"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "title"
            | "pre"
            | "body"
            | "img"
    )
}

/// Reads an HTML body.
pub(crate) fn analyze(input: &str) -> Html {
    let html = truncate(input, MAX_HTML);
    let bytes = html.as_bytes();
    let mut out = Html::default();
    let mut stack: Vec<Open> = Vec::new();
    let mut link: Option<Link> = None;
    let mut i = 0;
    while i < bytes.len() {
        let Some(rel) = html[i..].find('<') else {
            text(&html[i..], &stack, &mut link, &mut out);
            break;
        };
        let lt = i + rel;
        if lt > i {
            text(&html[i..lt], &stack, &mut link, &mut out);
        }
        let rest = &html[lt..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            // Comments (§13.2.5.43): up to the next "-->", or the end.
            i = comment.find("-->").map_or(bytes.len(), |e| lt + 4 + e + 3);
            continue;
        }
        let next = bytes.get(lt + 1).copied().unwrap_or(b' ');
        if next == b'!' || next == b'?' {
            i = rest.find('>').map_or(bytes.len(), |e| lt + e + 1);
            continue;
        }
        let closing = next == b'/';
        let name_start = if closing { lt + 2 } else { lt + 1 };
        if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            // A '<' that opens no tag is text (§13.2.5.6).
            text("<", &stack, &mut link, &mut out);
            i = lt + 1;
            continue;
        }
        let name_end = html[name_start..]
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .map_or(bytes.len(), |e| name_start + e);
        let name = html[name_start..name_end].to_ascii_lowercase();
        let Some(tag_end) = tag_end(bytes, name_end) else {
            break;
        };
        let attrs = &html[name_end..tag_end];
        i = tag_end + 1;
        if is_block(&name) && !out.visible.ends_with(' ') && out.visible.len() < MAX_VISIBLE {
            out.visible.push(' ');
        }
        if closing {
            if name == "a"
                && let Some(l) = link.take()
            {
                push_link(&mut out, l);
            }
            if let Some(pos) = stack.iter().rposition(|o| o.name == name) {
                stack.truncate(pos);
            }
            continue;
        }
        let attributes = parse_attributes(attrs);
        let attr = |n: &str| {
            attributes
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        match name.as_str() {
            "script" | "style" | "title" | "template" | "textarea" | "noscript" => {
                i = skip_raw_text(html, i, &name);
                continue;
            }
            "a" | "area" => {
                if let Some(l) = link.take() {
                    push_link(&mut out, l);
                }
                if let Some(href) = attr("href") {
                    let l = Link {
                        href: decode_entities(truncate(href.trim(), 2048)),
                        text: String::new(),
                    };
                    if name == "a" {
                        link = Some(l);
                    } else {
                        push_link(&mut out, l);
                    }
                }
            }
            "img" if out.images.len() < MAX_LINKS => {
                let src = attr("src").unwrap_or("");
                out.images.push(decode_entities(truncate(src.trim(), 2048)));
            }
            _ => {}
        }
        if is_void(&name) || attrs.trim_end().ends_with('/') || stack.len() >= MAX_DEPTH {
            continue;
        }
        let parent_hidden = stack.last().is_some_and(|o| o.hidden);
        let parent_huge = stack.last().is_some_and(|o| o.huge);
        let style = attr("style").map(compact_style).unwrap_or_default();
        let hidden = parent_hidden || attr("hidden").is_some() || style_hides(&style);
        let huge = parent_huge
            || style_huge(&style)
            || (name == "font" && attr("size").is_some_and(font_size_huge));
        stack.push(Open { name, hidden, huge });
    }
    if let Some(l) = link.take() {
        push_link(&mut out, l);
    }
    out
}

fn push_link(out: &mut Html, link: Link) {
    if out.links.len() < MAX_LINKS {
        out.links.push(link);
    }
}

/// Accounts a run of text between tags.
fn text(raw: &str, stack: &[Open], link: &mut Option<Link>, out: &mut Html) {
    let decoded = decode_entities(raw);
    let (hidden, huge) = stack.last().map_or((false, false), |o| (o.hidden, o.huge));
    let letters = decoded.chars().filter(|c| c.is_alphanumeric()).count();
    if hidden {
        out.hidden_chars += letters;
        return;
    }
    if huge {
        out.huge_chars += letters;
    }
    if let Some(l) = link
        && l.text.len() < MAX_LINK_TEXT
    {
        let room = MAX_LINK_TEXT - l.text.len();
        l.text.push_str(truncate(&decoded, room));
    }
    if out.visible.len() < MAX_VISIBLE {
        let room = MAX_VISIBLE - out.visible.len();
        out.visible.push_str(truncate(&decoded, room));
    }
}

/// The position of the '>' closing a tag whose name ends at `from`, quotes respected
/// (§13.2.5.32–38).
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (k, &b) in bytes.iter().enumerate().skip(from) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => {
                // A quote opens a value only after '='; elsewhere it is part of a name.
                let prev = bytes[from..k]
                    .iter()
                    .rev()
                    .find(|c| !c.is_ascii_whitespace());
                if prev == Some(&b'=') {
                    quote = Some(b);
                }
            }
            None if b == b'>' => return Some(k),
            None => {}
        }
    }
    None
}

/// Skips the content of a raw-text element up to its end tag (§13.2.5.2–3).
fn skip_raw_text(html: &str, from: usize, name: &str) -> usize {
    let mut at = from;
    while let Some(rel) = html[at..].find("</") {
        let start = at + rel + 2;
        let candidate = html.as_bytes().get(start..start + name.len());
        if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes())) {
            return html[start..]
                .find('>')
                .map_or(html.len(), |e| start + e + 1);
        }
        at = start;
    }
    html.len()
}

/// The attributes of a tag, names lower case, values with their quotes removed.
fn parse_attributes(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < 64 {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if start == i {
            break;
        }
        let name = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vstart = i + 1;
                let vend = b[vstart..]
                    .iter()
                    .position(|&c| c == q)
                    .map_or(b.len(), |e| vstart + e);
                value = s[vstart..vend].to_string();
                i = (vend + 1).min(b.len());
            } else {
                let vstart = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[vstart..i].to_string();
            }
        }
        out.push((name, value));
    }
    out
}

/// A `style` attribute lower case without white space, for substring tests.
fn compact_style(style: &str) -> String {
    truncate(style, 4096)
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The numbers following each occurrence of `property:` in a compacted style.
fn property_values<'a>(style: &'a str, property: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    style.match_indices(property).filter_map(move |(at, _)| {
        let before_ok = at == 0 || matches!(style.as_bytes()[at - 1], b';' | b'"' | b'{');
        before_ok.then(|| {
            let v = &style[at + property.len()..];
            &v[..v.find(';').unwrap_or(v.len())]
        })
    })
}

/// A CSS length split into its number and unit (`12.5px` → (12.5, "px")).
fn length(value: &str) -> Option<(f64, &str)> {
    let value = value.trim_end_matches("!important");
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let n = value[..end].parse::<f64>().ok()?;
    Some((n, &value[end..]))
}

fn style_hides(style: &str) -> bool {
    if property_values(style, "display:").any(|v| v.starts_with("none"))
        || property_values(style, "visibility:").any(|v| v.starts_with("hidden"))
        || property_values(style, "mso-hide:").any(|v| v.starts_with("all"))
    {
        return true;
    }
    if property_values(style, "opacity:").any(|v| length(v).is_some_and(|(n, _)| n == 0.0)) {
        return true;
    }
    property_values(style, "font-size:").any(|v| {
        length(v).is_some_and(|(n, unit)| match unit {
            "px" | "pt" | "" => n < 2.0,
            "em" | "rem" => n < 0.15,
            "%" => n < 15.0,
            _ => false,
        })
    })
}

fn style_huge(style: &str) -> bool {
    property_values(style, "font-size:").any(|v| {
        if v.starts_with("xxx-large") {
            return true;
        }
        length(v).is_some_and(|(n, unit)| match unit {
            "px" => n >= 48.0,
            "pt" => n >= 36.0,
            "em" | "rem" => n >= 3.0,
            "%" => n >= 300.0,
            _ => false,
        })
    })
}

/// `<font size>` (HTML 3.2 §5.9.3, kept by the rendering section of the Living Standard):
/// 1 to 7, 3 the normal size; 6 and 7, or +3 and more, are huge.
fn font_size_huge(size: &str) -> bool {
    let size = size.trim();
    if let Some(rel) = size.strip_prefix('+') {
        return rel.parse::<i32>().is_ok_and(|n| n >= 3);
    }
    size.parse::<i32>().is_ok_and(|n| n >= 6)
}

/// Decodes character references (§13.2.5.72): numeric ones and the named ones common in
/// mail, French ones included. Unknown names stay as written.
pub(crate) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .char_indices()
            .take(12)
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|(k, _)| k);
        let (name, consumed) = match end {
            Some(k) if after.as_bytes()[k] == b';' => (&after[..k], k + 1),
            Some(k) => (&after[..k], k),
            None if after.len() <= 12 => (after, after.len()),
            None => ("", 0),
        };
        match entity(name) {
            Some(c) if !name.is_empty() => {
                out.push(c);
                rest = &after[consumed..];
            }
            _ => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse::<u32>().ok()?
        };
        return Some(char::from_u32(code).unwrap_or('\u{fffd}'));
    }
    Some(match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "shy" => '\u{ad}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "eacute" => 'é',
        "Eacute" => 'É',
        "egrave" => 'è',
        "Egrave" => 'È',
        "ecirc" => 'ê',
        "euml" => 'ë',
        "agrave" => 'à',
        "Agrave" => 'À',
        "acirc" => 'â',
        "auml" => 'ä',
        "ccedil" => 'ç',
        "Ccedil" => 'Ç',
        "icirc" => 'î',
        "iuml" => 'ï',
        "ocirc" => 'ô',
        "ouml" => 'ö',
        "ucirc" => 'û',
        "ugrave" => 'ù',
        "uuml" => 'ü',
        "oelig" => 'œ',
        "laquo" => '«',
        "raquo" => '»',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "ldquo" => '\u{201c}',
        "rdquo" => '\u{201d}',
        "hellip" => '…',
        "ndash" => '–',
        "mdash" => '—',
        "euro" => '€',
        "pound" => '£',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "middot" => '·',
        "bull" => '•',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_links_and_images() {
        let h = analyze(
            "<html><head><title>T</title><style>p{color:red}</style></head><body>\
             <p>Bonjour&nbsp;&eacute;t&eacute; <b>fort</b></p><!-- hidden <p>x</p> -->\
             <a href=\"https://shop.example.com/a?x=1&amp;y=2\">Voir <i>l'offre</i></a>\
             <img src='cid:logo' alt=\"logo\"><script>document.write('<p>no</p>')</script>\
             <AREA HREF=https://map.example.org/>fin</body></html>",
        );
        assert_eq!(
            h.visible.split_whitespace().collect::<Vec<_>>(),
            ["Bonjour", "été", "fort", "Voir", "l'offre", "fin"]
        );
        assert_eq!(h.links.len(), 2);
        assert_eq!(h.links[0].href, "https://shop.example.com/a?x=1&y=2");
        assert_eq!(h.links[0].text, "Voir l'offre");
        assert_eq!(h.links[1].href, "https://map.example.org/");
        assert_eq!(h.images, ["cid:logo"]);
        assert_eq!(h.hidden_chars, 0);
        assert_eq!(h.huge_chars, 0);
    }

    #[test]
    fn hidden_and_huge_text() {
        let h = analyze(
            "<div style=\"display: none !important\">cheap pills <b>now</b></div>\
             <span style='font-size:1px'>abc</span><p hidden>def</p>\
             <span style=\"font-size:0.9em\">shown</span>\
             <font size=\"+4\">WIN</font><h1 style=\"FONT-SIZE: 60px\">BIG</h1><p>after</p>",
        );
        assert_eq!(h.hidden_chars, "cheappillsnowabcdef".len());
        assert_eq!(h.huge_chars, 6);
        assert!(h.visible.contains("shown") && h.visible.contains("after"));
        assert!(!h.visible.contains("pills"));
    }

    #[test]
    fn broken_html_is_read_without_panic() {
        for s in [
            "<",
            "<a",
            "<a href=\"x",
            "&",
            "&#",
            "&#xFFFFFFFF;",
            "&#99999999999;",
            "<!--",
            "</",
            "<a href=x>text",
            "a < b > c",
            "<p style=font-size:>x",
            "\u{e9}<\u{e9}>",
            "<div style='display:none'>",
        ] {
            let _ = analyze(s);
        }
        let deep = "<div>".repeat(10_000) + "x";
        assert_eq!(analyze(&deep).visible.trim(), "x");
    }

    #[test]
    fn entities() {
        assert_eq!(
            decode_entities("a&amp;b &lt;&#65;&#x42;&eacute"),
            "a&b <ABé"
        );
        assert_eq!(decode_entities("AT&T &unknown; &"), "AT&T &unknown; &");
    }
}
