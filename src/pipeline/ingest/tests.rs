//! Unit tests of ingest's parsers and walk.

#[allow(unused_imports)]
use super::decode::decode;
use super::html::*;
use super::markdown::*;
use super::text::*;
use super::walk::*;
use super::*;
use crate::article::ArticleMeta;

#[test]
fn front_matter_sets_metadata_and_is_not_text() {
    let parsed = parse_text(
        "---\ntitle: \"Sturm an der Küste\"\nsource: Nordkurier\nurl: https://example.org/a\npublished: 2026-03-02\nauthor: X\n---\nErster Absatz.\n\nZweiter Absatz.\n",
        false,
    );
    assert_eq!(parsed.meta.title.as_deref(), Some("Sturm an der Küste"));
    assert_eq!(parsed.meta.source.as_deref(), Some("Nordkurier"));
    assert_eq!(parsed.meta.url.as_deref(), Some("https://example.org/a"));
    assert_eq!(parsed.meta.published.as_deref(), Some("2026-03-02"));
    assert_eq!(parsed.paragraphs, ["Erster Absatz.", "Zweiter Absatz."]);
}

#[test]
fn a_dash_line_that_is_not_front_matter_stays_text() {
    let parsed = parse_text(
        "---\nThis is not metadata at all\n---\nBody text here.",
        false,
    );
    assert_eq!(parsed.meta, ArticleMeta::default());
    assert_eq!(parsed.paragraphs.len(), 1);
    assert!(parsed.paragraphs[0].contains("This is not metadata at all"));
}

#[test]
fn headline_first_line_becomes_title_and_its_own_paragraph() {
    let parsed = parse_text(
        "Trump meets with Ma Yun\n\nThey met in New York. It went well.",
        false,
    );
    assert_eq!(
        parsed.meta.title.as_deref(),
        Some("Trump meets with Ma Yun")
    );
    assert_eq!(
        parsed.paragraphs,
        [
            "Trump meets with Ma Yun",
            "They met in New York. It went well."
        ]
    );

    // Headline directly followed by the body, no blank line.
    let parsed = parse_text(
        "Storm hits the Breton coast\nThe storm came at night. Trees fell.",
        false,
    );
    assert_eq!(
        parsed.meta.title.as_deref(),
        Some("Storm hits the Breton coast")
    );
    assert_eq!(
        parsed.paragraphs,
        [
            "Storm hits the Breton coast",
            "The storm came at night. Trees fell."
        ]
    );
}

#[test]
fn a_sentence_or_a_single_long_line_is_not_a_headline() {
    let parsed = parse_text("The storm came at night.\n\nTrees fell.", false);
    assert_eq!(parsed.meta.title, None);
    let long = "Tỷ phú Jack Ma bất ngờ gặp mặt Tổng thống và đưa ra cam kết ".repeat(5);
    let parsed = parse_text(&long, false);
    assert_eq!(parsed.meta.title, None);
    assert_eq!(parsed.paragraphs.len(), 1);
    // A lone line, however headline-like, is the whole text, not a title.
    assert_eq!(parse_text("Storm hits the coast", false).meta.title, None);
}

#[test]
fn text_without_blank_lines_is_one_paragraph() {
    let parsed = parse_text("Eins. Zwei. Drei.", true);
    assert_eq!(parsed.paragraphs, ["Eins. Zwei. Drei."]);
    let parsed = parse_text("a\n \u{a0}\nb", true);
    assert_eq!(parsed.paragraphs, ["a", "b"]);
}

#[test]
fn html_drops_scripts_styles_and_page_chrome() {
    let html = r#"<!doctype html><html><head>
        <title>Fallback title | Site</title>
        <meta property="og:title" content="Tempête sur la Bretagne">
        <meta property="og:site_name" content="Ouest Info">
        <meta property="article:published_time" content="2026-03-02T08:00:00Z">
        <link rel="canonical" href="https://example.fr/tempete">
        <style>p { color: red }</style>
        <script>var tracking = "secret";</script>
        </head><body>
        <nav><a href="/">Accueil</a> <a href="/monde">Monde</a></nav>
        <header><h1>Site header</h1></header>
        <div class="cookie-banner">Acceptez les cookies</div>
        <article>
          <p>La tempête a frappé <b>la côte</b> dans la nuit.</p>
          <script>alert("x")</script>
          <p>Les vents ont atteint<br>150 km/h.</p>
          <aside>À lire aussi : autre chose</aside>
        </article>
        <footer>© Ouest Info</footer>
        </body></html>"#;
    let parsed = parse_html(html);
    assert_eq!(
        parsed.meta.title.as_deref(),
        Some("Tempête sur la Bretagne")
    );
    assert_eq!(parsed.meta.source.as_deref(), Some("Ouest Info"));
    assert_eq!(
        parsed.meta.url.as_deref(),
        Some("https://example.fr/tempete")
    );
    assert_eq!(
        parsed.meta.published.as_deref(),
        Some("2026-03-02T08:00:00Z")
    );
    assert_eq!(
        parsed.paragraphs,
        [
            "La tempête a frappé la côte dans la nuit.",
            "Les vents ont atteint\n150 km/h."
        ]
    );
}

#[test]
fn the_h1_headline_wins_over_a_title_naming_the_site() {
    let html = "<html><head><title>Metro Daily | Health</title></head><body>\
                <header><h1>Metro Daily</h1></header><article><h1>Nurses strike in Westmere</h1>\
                <p>About 8,000 nurses walked out.</p><p>Talks resume on Thursday.</p></article></body></html>";
    let parsed = parse_html(html);
    assert_eq!(
        parsed.meta.title.as_deref(),
        Some("Nurses strike in Westmere")
    );
    let body = without_leading_title(parsed.paragraphs, parsed.meta.title.as_deref());
    assert_eq!(
        body,
        [
            "About 8,000 nurses walked out.",
            "Talks resume on Thursday."
        ]
    );
}

#[test]
fn html_without_meta_uses_title_and_time_and_body() {
    let html = "<html><head><title> Plain  page </title></head><body>\
                <p>Published <time datetime=\"2026-01-09\">Jan 9</time>.</p><div>Body text.</div></body></html>";
    let parsed = parse_html(html);
    assert_eq!(parsed.meta.title.as_deref(), Some("Plain page"));
    assert_eq!(parsed.meta.published.as_deref(), Some("2026-01-09"));
    assert_eq!(parsed.paragraphs, ["Published Jan 9.", "Body text."]);
}

#[test]
fn markdown_keeps_text_and_drops_markup_links_and_images() {
    let parsed = parse_markdown(
        "# Metro line opens\n\nThe **first** line of the [metro](https://x.example) opened.\n![photo](a.jpg)\n\n- Item one\n- Item two\n\n<script>bad()</script>\n\n> A quote.\n",
    );
    assert_eq!(parsed.meta.title.as_deref(), Some("Metro line opens"));
    assert_eq!(
        parsed.paragraphs,
        [
            "Metro line opens",
            "The first line of the metro opened.",
            "Item one",
            "Item two",
            "A quote."
        ]
    );
}

#[test]
fn jsonl_records_become_articles_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.jsonl");
    fs::write(
        &path,
        concat!(
            r#"{"title":"A","url":"https://a.example","source":"Wire","published":"2026-01-01","text":"First article.\n\nSecond paragraph."}"#,
            "\n\n",
            "not json\n",
            r#"{"title":"No text"}"#,
            "\n",
            r#"{"text":"<p>HTML body.</p><script>x()</script>"}"#,
            "\n"
        ),
    )
    .unwrap();
    let report = ingest(&[path], &IngestOptions::default()).unwrap();
    assert_eq!(report.articles.len(), 2);
    let first = &report.articles[0];
    assert!(first.origin.ends_with("feed.jsonl#0"));
    assert_eq!(first.meta.title.as_deref(), Some("A"));
    assert_eq!(first.meta.source.as_deref(), Some("Wire"));
    assert_eq!(first.paragraphs, ["First article.", "Second paragraph."]);
    assert_eq!(report.articles[1].paragraphs, ["HTML body."]);
    assert!(report.articles[1].origin.ends_with("feed.jsonl#3"));
    let reasons: Vec<_> = report.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons[0].starts_with("line 3 is not valid JSON"));
    assert_eq!(reasons[1], "JSON record has no `text` string");
}

#[test]
fn json_file_holds_one_record_or_an_array() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("one.json"),
        r#"{"title":"T","text":"Only one."}"#,
    )
    .unwrap();
    fs::write(
        dir.path().join("many.json"),
        r#"[{"text":"First."},{"text":"Second."}]"#,
    )
    .unwrap();
    let report = ingest(&[dir.path().to_path_buf()], &IngestOptions::default()).unwrap();
    let origins: Vec<_> = report.articles.iter().map(|a| a.origin.as_str()).collect();
    assert_eq!(origins, ["many.json#0", "many.json#1", "one.json"]);
}

#[test]
fn a_title_that_opens_the_body_is_metadata_not_a_body_paragraph() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("a.txt"),
        "Storm hits the Breton coast\n\nThe storm came at night. Trees fell.",
    )
    .unwrap();
    fs::write(
        dir.path().join("b.md"),
        "# Metro line opens\n\nThe first line opened on Monday.",
    )
    .unwrap();
    fs::write(
        dir.path().join("c.html"),
        "<html><head><title>Ferries halted</title></head><body><h1>Ferries  halted</h1><p>No ferry sailed on Monday.</p></body></html>",
    )
    .unwrap();
    fs::write(
        dir.path().join("d.md"),
        "---\ntitle: Only a title\n---\nOnly a title\n",
    )
    .unwrap();
    let report = ingest(&[dir.path().to_path_buf()], &IngestOptions::default()).unwrap();
    let got: Vec<(Option<&str>, Vec<&str>)> = report
        .articles
        .iter()
        .map(|a| {
            (
                a.meta.title.as_deref(),
                a.paragraphs.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("Storm hits the Breton coast"),
                vec!["The storm came at night. Trees fell."]
            ),
            (
                Some("Metro line opens"),
                vec!["The first line opened on Monday."]
            ),
            (Some("Ferries halted"), vec!["No ferry sailed on Monday."]),
            // A body that is nothing but its title keeps it: there is nothing else to read.
            (Some("Only a title"), vec!["Only a title"]),
        ]
    );
}

#[test]
fn decode_repairs_a_few_bad_bytes_and_rejects_non_utf8_files() {
    let mut bytes = "Ein Text über das Wetter, der fast ganz korrekt ist. "
        .repeat(3)
        .into_bytes();
    bytes.push(0xFF);
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.replaced, 1);
    assert!(decoded.text.ends_with('\u{FFFD}'));
    let latin1: Vec<u8> = "Grüße aus Köln, schöne Öfen"
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    assert!(decode(&latin1).unwrap_err().starts_with("not UTF-8 text"));
}

#[test]
fn decode_reads_utf16_with_bom_and_normalises_to_nfc() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "Chào".encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    assert_eq!(decode(&bytes).unwrap().text, "Chào");
    // "à" decomposed (a + combining grave) becomes one character.
    assert_eq!(decode("Cha\u{300}o\r\n".as_bytes()).unwrap().text, "Chào\n");
}

#[test]
fn text_already_composed_is_normalised_as_the_full_composition_would() {
    use unicode_normalization::UnicodeNormalization;
    for text in [
        "Floods hit Hue.\r\nAbout 3,000 homes.\r",
        "Chào \u{FEFF}Hà\u{200B} Nội",
        "Cha\u{300}o \u{FEFF}ba\u{300}n",
        "e\u{301}\u{200B}\u{301}",
    ] {
        let full: String = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .nfc()
            .filter(|&c| c != '\u{FEFF}' && c != '\u{200B}')
            .collect();
        assert_eq!(super::decode::normalize(text), full, "{text:?}");
    }
}

#[test]
fn permission_errors_are_worded_for_people() {
    let err = io::Error::from(io::ErrorKind::PermissionDenied);
    assert_eq!(describe_io(&err), "permission denied");
}

#[test]
fn decode_rejects_empty_and_binary_input() {
    assert_eq!(decode(b"").unwrap_err(), "empty file");
    assert_eq!(
        decode(b" \n\t").unwrap_err(),
        "empty file (only whitespace)"
    );
    assert_eq!(
        decode(b"PK\x03\x04\x00\x00").unwrap_err(),
        "binary file (contains NUL bytes)"
    );
    assert_eq!(
        decode(b"\x01\x02\x03\x04text\x05\x06").unwrap_err(),
        "binary file (mostly control characters)"
    );
}

#[test]
fn malformed_front_matter_is_still_metadata_with_the_bad_line_left_out_and_reported() {
    let parsed = parse_text(
        "---\ntitle: Storm hits the coast\nthis line has no colon\nsource: Coast Herald\n---\nThe storm reached the coast on Monday.\n",
        false,
    );
    assert_eq!(parsed.meta.title.as_deref(), Some("Storm hits the coast"));
    assert_eq!(parsed.meta.source.as_deref(), Some("Coast Herald"));
    assert_eq!(
        parsed.paragraphs,
        ["The storm reached the coast on Monday."]
    );
    assert_eq!(
        parsed.warning.as_deref(),
        Some("front matter line 3 `this line has no colon` is not `key: value`, so it was left out; write each line as `key: value` between the `---` lines")
    );
}

#[test]
fn a_heading_over_several_lines_keeps_a_space_between_them() {
    let parsed = parse_markdown(
        "Storm hits\nthe coast\n==========\n\nThe storm reached the coast on Monday.\n",
    );
    assert_eq!(parsed.meta.title.as_deref(), Some("Storm hits the coast"));
    assert_eq!(
        parsed.paragraphs.last().map(String::as_str),
        Some("The storm reached the coast on Monday.")
    );
}
