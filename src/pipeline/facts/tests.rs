//! Unit tests of fact extraction and comparison.

use super::*;

fn keys(text: &str, kind: FactKind) -> Vec<String> {
    extract_facts(text)
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.key.to_string())
        .collect()
}

#[test]
fn numbers_in_any_spelling_get_the_same_key() {
    for text in [
        "They lost 1 million jobs.",
        "They lost 1,000,000 jobs.",
        "They lost 1.000.000 jobs.",
        "They lost one million jobs.",
        "They lost 1 Mio. jobs.",
    ] {
        assert_eq!(keys(text, FactKind::Number), ["1000000"], "{text}");
    }
    assert_eq!(keys("About 50.000 people", FactKind::Number), ["50000"]);
    assert_eq!(keys("About 50,000 people", FactKind::Number), ["50000"]);
    assert_eq!(keys("1.2 million jobs", FactKind::Number), ["1200000"]);
    assert_eq!(keys("1,2 million jobs", FactKind::Number), ["1200000"]);
    assert_eq!(keys("a 2.5% rise", FactKind::Number), ["2.5%"]);
    assert_eq!(keys("a 2,5 percent rise", FactKind::Number), ["2.5%"]);
    assert_eq!(keys("up 12 per cent", FactKind::Number), ["12%"]);
    assert_eq!(keys("up 12 % on the year", FactKind::Number), ["12%"]);
    assert_eq!(keys("three people died", FactKind::Number), ["3"]);
    assert_eq!(keys("twenty-five houses", FactKind::Number), ["25"]);
    assert_eq!(keys("half a million people", FactKind::Number), ["500000"]);
    assert_eq!(keys("0.75 points", FactKind::Number), ["0.75"]);
    assert_eq!(keys("1,234.5 tonnes", FactKind::Number), ["1234.5"]);
    assert_eq!(
        keys("Macron announced 50 000 posts.", FactKind::Number),
        ["50000"]
    );
    assert_eq!(
        keys("On 12 March 200 people left.", FactKind::Number),
        ["200"]
    );
    assert_eq!(keys("between 10-12 people", FactKind::Number), ["10", "12"]);
    assert_eq!(keys("1.234,5 tonnes", FactKind::Number), ["1234.5"]);
}

#[test]
fn money_keys_ignore_the_currency_spelling() {
    for text in [
        "a $50 billion plan",
        "a 50 billion dollar plan",
        "a plan of 50 tỷ USD",
        "USD 50bn",
    ] {
        assert_eq!(keys(text, FactKind::Number), ["50000000000"], "{text}");
    }
    assert_eq!(keys("a $5m grant", FactKind::Number), ["5000000"]);
    assert_eq!(keys("2억 won", FactKind::Number), ["200000000"]);
    let spans = scan("a $50 billion plan");
    assert_eq!(spans[0].unit, Unit::Money);
    assert_eq!(spans[0].fact.text, "$50 billion");
}

#[test]
fn codes_and_versions_are_not_numbers() {
    assert!(keys(
        "G7 leaders met about COVID-19 and the A320.",
        FactKind::Number
    )
    .is_empty());
    assert!(keys("Version 1.2.3 of the 5G plan", FactKind::Number).is_empty());
    assert!(keys("one of the leaders", FactKind::Number).is_empty());
}

#[test]
fn dates_are_dates_not_counts() {
    let facts = extract_facts("The storm hit on March 5, 2024, a Tuesday, at 10:30.");
    let dates: Vec<&FactKey> = facts
        .iter()
        .filter(|f| f.kind == FactKind::Date)
        .map(|f| &f.key)
        .collect();
    assert_eq!(
        dates,
        [
            &FactKey::MonthDay { month: 3, day: 5 },
            &FactKey::Year(2024),
            &FactKey::Weekday("tuesday"),
            &FactKey::Time("10:30".into())
        ]
    );
    // "in March" is supported by "March 5"; "in April" is not.
    let source = SourceFacts::new("The storm hit on March 5.");
    assert!(source
        .missing(&extract_facts("It came in March."))
        .is_empty());
    assert_eq!(source.missing(&extract_facts("It came in April.")).len(), 1);
    assert!(facts.iter().all(|f| f.kind != FactKind::Number));
    assert_eq!(keys("on 5th of March", FactKind::Date), ["date:03-05"]);
    assert_eq!(
        keys("on 2024-03-05", FactKind::Date),
        ["date:03-05", "2024"]
    );
    assert_eq!(keys("They met in May.", FactKind::Date), ["month:05"]);
    assert!(keys("May the best win.", FactKind::Date).is_empty());
    assert_eq!(keys("since the 1990s", FactKind::Date), ["1990s"]);
}

#[test]
fn names_skip_sentence_starts_titles_and_stopwords() {
    let text = "Officials said the flood hit Hanoi. The European Union sent aid. \
                Reporters met German Chancellor Olaf Scholz. Hanoi is calm.";
    let names = keys(text, FactKind::Name);
    assert_eq!(names, ["hanoi", "european union", "german", "olaf scholz"]);
    assert_eq!(
        keys("Talks at the Bank of England ended.", FactKind::Name),
        ["bank of england"]
    );
    assert_eq!(
        keys("Aid reached Hà Nội quickly.", FactKind::Name),
        ["ha noi"]
    );
    assert_eq!(
        keys(
            "Shares of Apple fell as its shares lost value.",
            FactKind::Name
        ),
        ["apple"]
    );
    assert_eq!(
        keys("A HEADLINE ABOUT NASA", FactKind::Name),
        ["headline", "nasa"]
    );
}

#[test]
fn country_and_adjective_match_but_lookalikes_do_not() {
    assert!(same_name_word("german", "germany"));
    assert!(same_name_word("vietnamese", "vietnam"));
    assert!(!same_name_word("austria", "australia"));
    assert!(!same_name_word("john", "johnson"));
    assert!(missing_facts("the German plan", "Germany has a plan.").is_empty());
}

#[test]
fn missing_facts_compares_normalised_keys() {
    let source = "Floods in Ha Noi destroyed 50.000 homes on Monday, President Vo said.";
    assert!(missing_facts("Floods destroyed 50,000 homes in Hanoi.", source).is_empty());
    assert!(missing_facts("Vo said floods hit on Monday.", source).is_empty());
    let missing = missing_facts("Floods destroyed 60,000 homes in Hue on Tuesday.", source);
    let texts: Vec<&str> = missing.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(texts, ["60,000", "Hue", "Tuesday"]);
}

#[test]
fn shares_key_facts_needs_every_number_and_most_names() {
    let source = "The plant in Leipzig will cut 1,200 jobs, BMW said.";
    assert!(shares_key_facts(
        "BMW will cut 1,200 jobs in Leipzig.",
        source
    ));
    assert!(!shares_key_facts(
        "BMW will cut 1,500 jobs in Leipzig.",
        source
    ));
    // One of two names respelled still supports; no facts at all does not.
    assert!(shares_key_facts(
        "Workers at BMW lose 1,200 jobs in Lipsia.",
        source
    ));
    assert!(!shares_key_facts("the company will cut jobs", source));
}
