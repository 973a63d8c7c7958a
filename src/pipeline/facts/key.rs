//! [`FactKey`]: the normalised value of a key fact, the thing two spellings of one fact share.
//! A typed key rather than a tagged string ("month:03"), so that comparisons match on the kind
//! of value and nothing parses a key back apart.

use std::fmt;

/// The normalised value of a fact: what is compared, whatever the spelling.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FactKey {
    /// A count or a sum, as its exact decimal value without grouping ("1200000", "0.75").
    Number(String),
    /// A percentage's exact decimal value ("12.5" for "12,5 %").
    Percent(String),
    Year(u16),
    /// The first year of a decade ("the 1990s" → 1990).
    Decade(u16),
    /// A month named without a day (1–12): "in March".
    Month(u8),
    /// A day of a month: "March 5", "5th of March", "2024-03-05".
    MonthDay {
        month: u8,
        day: u8,
    },
    /// A weekday, lowercase English ("monday").
    Weekday(&'static str),
    /// A clock time or numeric date, as written ("10:30", "5/3").
    Time(String),
    /// A name's folded words, space-separated ("olaf scholz", "ha noi").
    Name(String),
}

impl FactKey {
    /// The month this key falls in, for "in March" to be supported by "March 5".
    pub fn month(&self) -> Option<u8> {
        match self {
            FactKey::Month(m) | FactKey::MonthDay { month: m, .. } => Some(*m),
            _ => None,
        }
    }
}

impl fmt::Display for FactKey {
    /// A compact spelling for logs and tests: `1200000`, `12.5%`, `2024`, `1990s`, `month:03`,
    /// `date:03-05`, `weekday:monday`, `time:10:30`, or the name's words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactKey::Number(v) | FactKey::Name(v) => f.write_str(v),
            FactKey::Percent(v) => write!(f, "{v}%"),
            FactKey::Year(y) => write!(f, "{y}"),
            FactKey::Decade(y) => write!(f, "{y}s"),
            FactKey::Month(m) => write!(f, "month:{m:02}"),
            FactKey::MonthDay { month, day } => write!(f, "date:{month:02}-{day:02}"),
            FactKey::Weekday(d) => write!(f, "weekday:{d}"),
            FactKey::Time(t) => write!(f, "time:{t}"),
        }
    }
}
