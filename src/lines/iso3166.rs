//! ISO 3166-1 alpha-2: the country codes a line may list, and what to suggest for a code
//! that is not one.
//!
//! This module owns the table of codes (the 249 officially assigned ones, plus `XK`, the
//! user-assigned code for Kosovo that MaxMind, DB-IP and IPinfo write) and the suggestions
//! for the codes people type instead (`UK` for `GB`, `EL` for `GR`, lower case, alpha-3).
//! It knows nothing of lines or databases.

/// Every code a GeoIP database can give as a country, sorted.
const CODES: [&str; 250] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Codes that are not ISO 3166-1 alpha-2 but are typed for one: reserved codes in use
/// elsewhere (`UK` in domain names, `EL` in the EU), and alpha-3 codes of the countries a
/// GeoDNS for mainland China is most often configured for.
const INSTEAD: [(&str, &str); 12] = [
    ("UK", "GB"),
    ("EL", "GR"),
    ("CHN", "CN"),
    ("HKG", "HK"),
    ("MAC", "MO"),
    ("TWN", "TW"),
    ("USA", "US"),
    ("GBR", "GB"),
    ("JPN", "JP"),
    ("KOR", "KR"),
    ("SGP", "SG"),
    ("DEU", "DE"),
];

/// Whether `code` is a country code a database can give.
pub(crate) fn is_country(code: &str) -> bool {
    CODES.binary_search(&code).is_ok()
}

/// The code probably meant by `code`, which is not one.
pub(crate) fn suggest(code: &str) -> Option<&'static str> {
    let upper = code.to_ascii_uppercase();
    if let Ok(i) = CODES.binary_search(&upper.as_str()) {
        return CODES.get(i).copied();
    }
    INSTEAD
        .iter()
        .find(|(typed, _)| *typed == upper)
        .map(|(_, meant)| *meant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_holds_each_code_once() {
        assert!(CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(CODES.iter().all(|c| c.len() == 2));
        assert!(INSTEAD.iter().all(|(_, meant)| is_country(meant)));
        assert!(INSTEAD.iter().all(|(typed, _)| !is_country(typed)));
    }

    #[test]
    fn codes_and_suggestions() {
        for code in ["CN", "HK", "GB", "US", "XK", "SS", "BQ"] {
            assert!(is_country(code), "{code}");
        }
        for code in ["UK", "EU", "AP", "ZZ", "cn", "CHN", "EL"] {
            assert!(!is_country(code), "{code}");
        }
        assert_eq!(suggest("UK"), Some("GB"));
        assert_eq!(suggest("cn"), Some("CN"));
        assert_eq!(suggest("CHN"), Some("CN"));
        assert_eq!(suggest("el"), Some("GR"));
        assert_eq!(suggest("QQ"), None);
    }
}
