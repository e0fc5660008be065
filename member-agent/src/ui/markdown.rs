//! Bulletin bodies, written in Markdown by a coordinator of the ISAC, as
//! markup that cannot carry anything active. `pulldown-cmark` (without its
//! HTML writer) reads the text into events; this module builds its own
//! small tree from them and renders it through maud, so every piece of
//! text is an escaped splice like any other field:
//!
//! - raw HTML (blocks and inline) is shown as text: a `<script>` in a
//!   bulletin is read, never run;
//! - a link keeps its `href` only for `http:` and `https:` URLs, anything
//!   else (`javascript:`, `data:`, relative paths) is its text alone;
//!   images become links to the image (nothing is loaded);
//! - bounded: at most [`MAX_INPUT_BYTES`] read (statements cap bulletin
//!   bodies well below it; a longer text is shown plain), at most
//!   [`MAX_DEPTH`] nested elements (deeper ones are flattened into their
//!   parent) and [`MAX_NODES`] nodes (the rest is dropped with a note).
//!
//! `fuzz/fuzz_targets/bulletin_markdown.rs` and its stable run in
//! `tests/tests/e2e/fuzz_importers.rs` feed it arbitrary bytes.

use maud::{html, Markup};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Longest body read as Markdown, in bytes.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;
/// Deepest element nesting rendered.
pub const MAX_DEPTH: usize = 24;
/// Most nodes (elements and text runs) rendered.
pub const MAX_NODES: usize = 20_000;

/// The elements a bulletin may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
enum El {
    Paragraph,
    Heading(u8),
    Quote,
    CodeBlock,
    /// Raw HTML shown as text, in a block of its own.
    RawBlock,
    List {
        ordered: bool,
        start: u64,
    },
    Item,
    Emphasis,
    Strong,
    Strike,
    /// A link; `None` when its destination is not http(s).
    Link(Option<String>),
    /// Anything else Markdown may produce: its children, no element.
    Plain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Element(El, Vec<Node>),
    Text(String),
    Code(String),
    Break,
    Rule,
}

/// `url` if it is an absolute http or https URL with nothing odd in it.
pub fn safe_href(url: &str) -> Option<String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    let clean = !url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>');
    (scheme_ok && clean && url.len() > "http://".len()).then(|| url.to_owned())
}

fn heading(level: HeadingLevel) -> u8 {
    // `#` in a bulletin is below the page's own h1 and the section's h2.
    match level {
        HeadingLevel::H1 => 3,
        HeadingLevel::H2 => 4,
        HeadingLevel::H3 => 5,
        _ => 6,
    }
}

fn element(tag: Tag<'_>) -> El {
    match tag {
        Tag::Paragraph => El::Paragraph,
        Tag::Heading { level, .. } => El::Heading(heading(level)),
        Tag::BlockQuote(_) => El::Quote,
        Tag::CodeBlock(_) => El::CodeBlock,
        Tag::HtmlBlock => El::RawBlock,
        Tag::List(start) => El::List {
            ordered: start.is_some(),
            start: start.unwrap_or(1),
        },
        Tag::Item => El::Item,
        Tag::Emphasis => El::Emphasis,
        Tag::Strong => El::Strong,
        Tag::Strikethrough => El::Strike,
        Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => El::Link(safe_href(&dest_url)),
        _ => El::Plain,
    }
}

/// The body as a tree, within the bounds.
fn parse(text: &str) -> Vec<Node> {
    let mut stack: Vec<(El, Vec<Node>)> = vec![(El::Plain, Vec::new())];
    // Elements opened past `MAX_DEPTH`: not pushed, their End ignored.
    let mut flattened = 0usize;
    let mut cut = false;
    for (nodes, event) in Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH).enumerate() {
        if nodes >= MAX_NODES {
            cut = true;
            break;
        }
        let leaf = match event {
            Event::Start(tag) => {
                if stack.len() > MAX_DEPTH {
                    flattened += 1;
                } else {
                    stack.push((element(tag), Vec::new()));
                }
                continue;
            }
            Event::End(end) => {
                if flattened > 0 {
                    flattened -= 1;
                } else if stack.len() > 1 {
                    let (el, children) = stack.pop().expect("more than the root");
                    // An image shows its alt text; an empty one, the word.
                    let children = if matches!(end, TagEnd::Image) && children.is_empty() {
                        vec![Node::Text("image".into())]
                    } else {
                        children
                    };
                    stack
                        .last_mut()
                        .expect("the root stays")
                        .1
                        .push(Node::Element(el, children));
                }
                continue;
            }
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => Node::Text(t.into_string()),
            Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                Node::Code(t.into_string())
            }
            Event::FootnoteReference(t) => Node::Text(format!("[^{t}]")),
            Event::SoftBreak => Node::Text("\n".into()),
            Event::HardBreak => Node::Break,
            Event::Rule => Node::Rule,
            Event::TaskListMarker(done) => Node::Text(if done { "[x] " } else { "[ ] " }.into()),
        };
        stack.last_mut().expect("the root stays").1.push(leaf);
    }
    // Close whatever the cut left open.
    while stack.len() > 1 {
        let (el, children) = stack.pop().expect("more than the root");
        stack
            .last_mut()
            .expect("the root stays")
            .1
            .push(Node::Element(el, children));
    }
    let mut root = stack.pop().map(|(_, c)| c).unwrap_or_default();
    if cut {
        root.push(Node::Element(
            El::Paragraph,
            vec![Node::Text(format!(
                "(the rest of this bulletin is not shown: more than {MAX_NODES} parts)"
            ))],
        ));
    }
    root
}

fn render(nodes: &[Node]) -> Markup {
    html! {
        @for n in nodes {
            @match n {
                Node::Text(t) => (t),
                Node::Code(t) => code { (t) },
                Node::Break => { br; }
                Node::Rule => { hr; }
                Node::Element(el, children) => (render_element(el, children)),
            }
        }
    }
}

fn render_element(el: &El, children: &[Node]) -> Markup {
    let inner = render(children);
    html! {
        @match el {
            El::Paragraph => p { (inner) },
            El::Heading(3) => h3 { (inner) },
            El::Heading(4) => h4 { (inner) },
            El::Heading(5) => h5 { (inner) },
            El::Heading(_) => h6 { (inner) },
            El::Quote => blockquote { (inner) },
            El::CodeBlock => pre { code { (inner) } },
            El::RawBlock => pre.raw-html { (inner) },
            El::List { ordered: true, start } => ol start=(start) { (inner) },
            El::List { ordered: false, .. } => ul { (inner) },
            El::Item => li { (inner) },
            El::Emphasis => em { (inner) },
            El::Strong => strong { (inner) },
            El::Strike => del { (inner) },
            El::Link(Some(href)) => a href=(href) rel="noopener noreferrer nofollow" { (inner) },
            El::Link(None) => span.link-refused { (inner) },
            El::Plain => (inner),
        }
    }
}

/// A bulletin body as markup: Markdown when it fits [`MAX_INPUT_BYTES`],
/// otherwise the text as it is.
pub fn to_markup(body: &str) -> Markup {
    if body.len() > MAX_INPUT_BYTES {
        return html! { div.markdown { pre { (body) } } };
    }
    html! { div.markdown { (render(&parse(body))) } }
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
    use super::*;

    fn md(s: &str) -> String {
        to_markup(s).into_string()
    }

    #[test]
    fn markdown_becomes_the_usual_elements() {
        let out = md("# Rotate tokens\n\nMembers **must** rotate *now*.\n\n- one\n- two\n\n3. three\n\n> quoted\n\n`code` and ~~old~~\n\n```\nfenced <b>\n```\n\n---\n");
        for want in [
            "<h3>Rotate tokens</h3>",
            "<strong>must</strong>",
            "<em>now</em>",
            "<ul><li>one</li><li>two</li></ul>",
            "<ol start=\"3\"><li>three</li></ol>",
            "<blockquote><p>quoted</p></blockquote>",
            "<code>code</code>",
            "<del>old</del>",
            "<pre><code>fenced &lt;b&gt;\n</code></pre>",
            "<hr>",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
    }

    #[test]
    fn raw_html_is_text_and_only_http_links_link() {
        let out = md("<script>window.__xss=1</script>\n\nHi <img src=x onerror=alert(1)> there\n\n[ok](https://example.org/a?b=1&c=2) [bad](javascript:alert(1)) [rel](/item/x) ![img](data:text/html,hi) <https://auto.example/>");
        hostile::assert_inert(&out);
        assert!(
            out.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"),
            "{out}"
        );
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
        assert!(out.contains("<a href=\"https://example.org/a?b=1&amp;c=2\" rel=\"noopener noreferrer nofollow\">ok</a>"), "{out}");
        assert!(out.contains("<a href=\"https://auto.example/\""), "{out}");
        assert!(
            out.contains("<span class=\"link-refused\">bad</span>"),
            "{out}"
        );
        assert!(
            out.contains("<span class=\"link-refused\">rel</span>"),
            "{out}"
        );
        assert!(
            out.contains("<span class=\"link-refused\">img</span>"),
            "{out}"
        );
        assert!(
            !out.to_ascii_lowercase().contains("javascript:alert(1)\""),
            "{out}"
        );
    }

    #[test]
    fn hostile_text_stays_text() {
        let h = hostile::all();
        for body in [
            h.clone(),
            format!("# {h}\n\n* {h}\n\n[{h}](https://x.example/{h})"),
        ] {
            hostile::assert_shown_inert(&md(&body));
        }
    }

    #[test]
    fn only_http_and_https_are_hrefs() {
        for ok in [
            "https://a.example",
            "http://a.example/x?y#z",
            "HTTPS://A.EXAMPLE",
        ] {
            assert!(safe_href(ok).is_some(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "/item/1",
            "//evil.example",
            "http://",
            "https://a.example/\"onmouseover=x",
            "https://a.example/ x",
            "vbscript:x",
            "",
        ] {
            assert!(safe_href(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        // Deep quotes and lists: rendered, flattened past MAX_DEPTH.
        for deep in [
            ">".repeat(5000) + " x",
            "- ".repeat(3000) + "x",
            "*".repeat(20_000),
        ] {
            let out = md(&deep);
            assert!(out.matches("<blockquote>").count() <= MAX_DEPTH, "quotes");
            assert!(out.matches("<ul>").count() <= MAX_DEPTH, "lists");
        }
        // Many nodes: cut with a note.
        let many = "a  \n".repeat(MAX_NODES);
        assert!(md(&many).contains("is not shown"));
        // Longer than we read: plain text.
        let long = "<b>x</b>".repeat(MAX_INPUT_BYTES / 8 + 1);
        let out = md(&long);
        assert!(
            out.starts_with("<div class=\"markdown\"><pre>&lt;b&gt;"),
            "{}",
            &out[..80]
        );
    }
}
