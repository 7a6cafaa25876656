//! Maven's version order (`ComparableVersion` of Maven 3.8.7, the one Debian 12 ships).
//!
//! A version is lower-cased and read into nested lists: `.` separates items of one list;
//! `-` and every switch between digits and letters open a sub-list, nested in the current one.
//! Items are numbers (any length), qualifiers and sub-lists. Well-known qualifiers rank
//! `alpha` < `beta` < `milestone` < `rc` (= `cr`) < `snapshot` < release (`""`, `ga`,
//! `final`, `release`) < `sp`, then unknown ones alphabetically; `a1`, `b1`, `m1` read as
//! `alpha-1`, `beta-1`, `milestone-1`; a qualifier after other items of a list opens a
//! sub-list (`1.0.0.x1` reads as `1.0.0-x1`). Trailing "null" items (0, the release qualifier, empty lists) are
//! dropped from each list. Comparing item by item, a missing item compares as null; a number
//! beats a sub-list, which beats a qualifier. Maven reads every string; only an empty one is an
//! error here. Digits are ASCII digits (Java's `isDigit` also takes other scripts' digits).

use std::cmp::Ordering;

use super::{VersionError, VersionOrder};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Digits without leading zeros (`""` is zero).
    Number(String),
    Qualifier(Qualifier),
    List(Vec<Item>),
}

/// A qualifier's rank: the well-known ones in order, then any other, alphabetically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Qualifier {
    Known(u8),
    Other(String),
}

const KNOWN_QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
/// The rank of a release (no qualifier).
const RELEASE: Qualifier = Qualifier::Known(5);

impl Qualifier {
    fn new(text: &str, followed_by_digit: bool) -> Self {
        let expanded = match text {
            "a" if followed_by_digit => "alpha",
            "b" if followed_by_digit => "beta",
            "m" if followed_by_digit => "milestone",
            "ga" | "final" | "release" => "",
            "cr" => "rc",
            other => other,
        };
        match KNOWN_QUALIFIERS.iter().position(|known| *known == expanded) {
            Some(rank) => Self::Known(rank as u8),
            None => Self::Other(expanded.to_owned()),
        }
    }
}

impl Item {
    fn number(digits: &str) -> Self {
        Self::Number(digits.trim_start_matches('0').to_owned())
    }

    fn is_null(&self) -> bool {
        match self {
            Self::Number(digits) => digits.is_empty(),
            Self::Qualifier(qualifier) => *qualifier == RELEASE,
            Self::List(items) => items.is_empty(),
        }
    }

    /// Compares with another item, or with a missing one (`None`).
    fn compare(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Self::Number(digits), None) if digits.is_empty() => Ordering::Equal,
            (Self::Number(_), None) => Ordering::Greater,
            (Self::Qualifier(q), None) => q.cmp(&RELEASE),
            (Self::List(items), None) => items
                .iter()
                .map(|item| item.compare(None))
                .find(|order| *order != Ordering::Equal)
                .unwrap_or(Ordering::Equal),
            (Self::Number(a), Some(Self::Number(b))) => {
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            }
            (Self::Qualifier(a), Some(Self::Qualifier(b))) => a.cmp(b),
            (Self::List(a), Some(Self::List(b))) => compare_lists(a, b),
            (Self::Number(_), Some(_)) => Ordering::Greater,
            (Self::Qualifier(_), Some(_)) => Ordering::Less,
            (Self::List(_), Some(Self::Number(_))) => Ordering::Less,
            (Self::List(_), Some(Self::Qualifier(_))) => Ordering::Greater,
        }
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    (0..a.len().max(b.len()))
        .map(|i| match (a.get(i), b.get(i)) {
            (Some(x), y) => x.compare(y),
            (None, Some(y)) => y.compare(None).reverse(),
            (None, None) => Ordering::Equal,
        })
        .find(|order| *order != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(compare_lists(&parse(a)?, &parse(b)?))
}

/// The version's top-level list.
fn parse(version: &str) -> Result<Vec<Item>, VersionError> {
    if version.is_empty() {
        return Err(VersionError::new(
            VersionOrder::Maven,
            version,
            "the version is empty",
        ));
    }
    let text = version.to_lowercase();
    // The open lists, outermost first; each opened list is the last item of its parent.
    let mut open: Vec<Vec<Item>> = vec![Vec::new()];
    let mut digits = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let current = open.last_mut().expect("the top-level list is never closed");
        match c {
            '.' | '-' => {
                current.push(if i == start {
                    Item::number("")
                } else {
                    item(&text[start..i], digits)
                });
                start = i + 1;
                if c == '-' {
                    open.push(Vec::new());
                }
            }
            _ if c.is_ascii_digit() => {
                if !digits && i > start {
                    let qualifier = Item::Qualifier(Qualifier::new(&text[start..i], true));
                    // `.x1` reads as `-x1`: a qualifier after other items opens a sub-list.
                    if current.is_empty() {
                        current.push(qualifier);
                    } else {
                        open.push(vec![qualifier]);
                    }
                    start = i;
                    open.push(Vec::new());
                }
                digits = true;
            }
            _ => {
                if digits && i > start {
                    current.push(Item::number(&text[start..i]));
                    start = i;
                    open.push(Vec::new());
                }
                digits = false;
            }
        }
    }
    if start < text.len() {
        let last = item(&text[start..], digits);
        let current = open.last_mut().expect("the top-level list is never closed");
        if digits || current.is_empty() {
            current.push(last);
        } else {
            open.push(vec![last]);
        }
    }
    Ok(close_all(open))
}

fn item(text: &str, digits: bool) -> Item {
    if digits {
        Item::number(text)
    } else {
        Item::Qualifier(Qualifier::new(text, false))
    }
}

/// Normalises the open lists innermost first, each becoming the last item of its parent.
fn close_all(mut open: Vec<Vec<Item>>) -> Vec<Item> {
    let mut closed = open.pop().map(normalized).unwrap_or_default();
    while let Some(mut parent) = open.pop() {
        parent.push(Item::List(closed));
        closed = normalized(parent);
    }
    closed
}

/// Drops null items from the end, looking past sub-lists that are not null.
fn normalized(mut items: Vec<Item>) -> Vec<Item> {
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        if items[i].is_null() {
            items.remove(i);
        } else if !matches!(items[i], Item::List(_)) {
            break;
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn qualifiers_sort_in_mavens_order() {
        let ascending = [
            "1-alpha1",
            "1-alpha2",
            "1-beta1",
            "1-m1",
            "1-rc1",
            "1-SNAPSHOT",
            "1",
            "1-sp1",
            "1-abc",
            "1-1",
            "1.0.1",
            "1.1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(cmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
    }

    #[test]
    fn null_items_aliases_and_case_do_not_count() {
        assert_eq!(cmp("1.0.0", "1"), Ordering::Equal);
        assert_eq!(cmp("1-ga", "1"), Ordering::Equal);
        assert_eq!(cmp("1.0-final", "1"), Ordering::Equal);
        assert_eq!(cmp("1-cr1", "1-RC1"), Ordering::Equal);
        assert_eq!(cmp("1a1", "1-alpha-1"), Ordering::Equal);
        assert_eq!(cmp("1.0-alpha", "1-alpha"), Ordering::Equal);
        assert_eq!(cmp("1.RELEASE", "1"), Ordering::Equal);
        assert_eq!(cmp("1.0.0.x1", "1.0.0-x1"), Ordering::Equal);
    }

    /// Checked against Maven 3.8.7's `ComparableVersion` on this machine: its order is not
    /// transitive, and neither is this one.
    #[test]
    fn mavens_order_is_not_transitive() {
        assert_eq!(cmp("1", "1-a"), Ordering::Less);
        assert_eq!(cmp("1-a", "1-0-snapshot"), Ordering::Less);
        assert_eq!(cmp("1", "1-0-snapshot"), Ordering::Greater);
    }

    #[test]
    fn long_numbers_compare_as_numbers() {
        let long = format!("1.{}", "9".repeat(40));
        assert_eq!(cmp(&long, "1.2147483648"), Ordering::Greater);
        assert_eq!(cmp("1.0002147483648", "1.2147483648"), Ordering::Equal);
    }

    #[test]
    fn every_string_but_the_empty_one_is_a_version() {
        assert!(compare("", "1").is_err());
        for odd in ["-", ".", "--", "a", "1..2", "💥", "1-", "é1"] {
            assert!(compare(odd, "1").is_ok(), "{odd:?}");
        }
    }
}
