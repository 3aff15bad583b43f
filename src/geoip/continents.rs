//! The continent of each ISO 3166-1 country, for layouts that only store a country.
//!
//! The assignments are GeoNames' (the source of GeoIP2's `continent.code`), so a continent
//! rule means the same thing whichever layout the database has: Turkey, Armenia, Azerbaijan
//! and Georgia are Asia, Russia and Cyprus are Europe, Egypt is Africa, Panama and the
//! Caribbean are North America, Timor-Leste and Christmas Island are Oceania.

/// Returns the two-letter continent code (AF AN AS EU NA OC SA) of an upper-case country code.
pub(crate) fn continent_of(country: [u8; 2]) -> Option<[u8; 2]> {
    TABLE
        .binary_search_by(|(code, _)| code.cmp(&&country))
        .ok()
        .map(|i| *TABLE[i].1)
}

const AF: &[u8; 2] = b"AF";
const AN: &[u8; 2] = b"AN";
const AS: &[u8; 2] = b"AS";
const EU: &[u8; 2] = b"EU";
const NA: &[u8; 2] = b"NA";
const OC: &[u8; 2] = b"OC";
const SA: &[u8; 2] = b"SA";

// Sorted by country code (a test checks), searched by bisection.
static TABLE: &[(&[u8; 2], &[u8; 2])] = &[
    (b"AD", EU),
    (b"AE", AS),
    (b"AF", AS),
    (b"AG", NA),
    (b"AI", NA),
    (b"AL", EU),
    (b"AM", AS),
    // Netherlands Antilles: withdrawn in 2010 but still found in registry data.
    (b"AN", NA),
    (b"AO", AF),
    // "Asia/Pacific": not ISO 3166, but regional registries use it for unassigned APNIC space.
    (b"AP", AS),
    (b"AQ", AN),
    (b"AR", SA),
    (b"AS", OC),
    (b"AT", EU),
    (b"AU", OC),
    (b"AW", NA),
    (b"AX", EU),
    (b"AZ", AS),
    (b"BA", EU),
    (b"BB", NA),
    (b"BD", AS),
    (b"BE", EU),
    (b"BF", AF),
    (b"BG", EU),
    (b"BH", AS),
    (b"BI", AF),
    (b"BJ", AF),
    (b"BL", NA),
    (b"BM", NA),
    (b"BN", AS),
    (b"BO", SA),
    (b"BQ", NA),
    (b"BR", SA),
    (b"BS", NA),
    (b"BT", AS),
    (b"BV", AN),
    (b"BW", AF),
    (b"BY", EU),
    (b"BZ", NA),
    (b"CA", NA),
    (b"CC", AS),
    (b"CD", AF),
    (b"CF", AF),
    (b"CG", AF),
    (b"CH", EU),
    (b"CI", AF),
    (b"CK", OC),
    (b"CL", SA),
    (b"CM", AF),
    (b"CN", AS),
    (b"CO", SA),
    (b"CR", NA),
    // Serbia and Montenegro: withdrawn in 2006, still in old registry records.
    (b"CS", EU),
    (b"CU", NA),
    (b"CV", AF),
    (b"CW", NA),
    (b"CX", OC),
    (b"CY", EU),
    (b"CZ", EU),
    (b"DE", EU),
    (b"DJ", AF),
    (b"DK", EU),
    (b"DM", NA),
    (b"DO", NA),
    (b"DZ", AF),
    (b"EC", SA),
    (b"EE", EU),
    (b"EG", AF),
    (b"EH", AF),
    (b"ER", AF),
    (b"ES", EU),
    (b"ET", AF),
    // "European Union": not a country, but RIPE registry data uses it.
    (b"EU", EU),
    (b"FI", EU),
    (b"FJ", OC),
    (b"FK", SA),
    (b"FM", OC),
    (b"FO", EU),
    (b"FR", EU),
    (b"GA", AF),
    (b"GB", EU),
    (b"GD", NA),
    (b"GE", AS),
    (b"GF", SA),
    (b"GG", EU),
    (b"GH", AF),
    (b"GI", EU),
    (b"GL", NA),
    (b"GM", AF),
    (b"GN", AF),
    (b"GP", NA),
    (b"GQ", AF),
    (b"GR", EU),
    (b"GS", AN),
    (b"GT", NA),
    (b"GU", OC),
    (b"GW", AF),
    (b"GY", SA),
    (b"HK", AS),
    (b"HM", AN),
    (b"HN", NA),
    (b"HR", EU),
    (b"HT", NA),
    (b"HU", EU),
    (b"ID", AS),
    (b"IE", EU),
    (b"IL", AS),
    (b"IM", EU),
    (b"IN", AS),
    (b"IO", AS),
    (b"IQ", AS),
    (b"IR", AS),
    (b"IS", EU),
    (b"IT", EU),
    (b"JE", EU),
    (b"JM", NA),
    (b"JO", AS),
    (b"JP", AS),
    (b"KE", AF),
    (b"KG", AS),
    (b"KH", AS),
    (b"KI", OC),
    (b"KM", AF),
    (b"KN", NA),
    (b"KP", AS),
    (b"KR", AS),
    (b"KW", AS),
    (b"KY", NA),
    (b"KZ", AS),
    (b"LA", AS),
    (b"LB", AS),
    (b"LC", NA),
    (b"LI", EU),
    (b"LK", AS),
    (b"LR", AF),
    (b"LS", AF),
    (b"LT", EU),
    (b"LU", EU),
    (b"LV", EU),
    (b"LY", AF),
    (b"MA", AF),
    (b"MC", EU),
    (b"MD", EU),
    (b"ME", EU),
    (b"MF", NA),
    (b"MG", AF),
    (b"MH", OC),
    (b"MK", EU),
    (b"ML", AF),
    (b"MM", AS),
    (b"MN", AS),
    (b"MO", AS),
    (b"MP", OC),
    (b"MQ", NA),
    (b"MR", AF),
    (b"MS", NA),
    (b"MT", EU),
    (b"MU", AF),
    (b"MV", AS),
    (b"MW", AF),
    (b"MX", NA),
    (b"MY", AS),
    (b"MZ", AF),
    (b"NA", AF),
    (b"NC", OC),
    (b"NE", AF),
    (b"NF", OC),
    (b"NG", AF),
    (b"NI", NA),
    (b"NL", EU),
    (b"NO", EU),
    (b"NP", AS),
    (b"NR", OC),
    (b"NU", OC),
    (b"NZ", OC),
    (b"OM", AS),
    (b"PA", NA),
    (b"PE", SA),
    (b"PF", OC),
    (b"PG", OC),
    (b"PH", AS),
    (b"PK", AS),
    (b"PL", EU),
    (b"PM", NA),
    (b"PN", OC),
    (b"PR", NA),
    (b"PS", AS),
    (b"PT", EU),
    (b"PW", OC),
    (b"PY", SA),
    (b"QA", AS),
    (b"RE", AF),
    (b"RO", EU),
    (b"RS", EU),
    (b"RU", EU),
    (b"RW", AF),
    (b"SA", AS),
    (b"SB", OC),
    (b"SC", AF),
    (b"SD", AF),
    (b"SE", EU),
    (b"SG", AS),
    (b"SH", AF),
    (b"SI", EU),
    (b"SJ", EU),
    (b"SK", EU),
    (b"SL", AF),
    (b"SM", EU),
    (b"SN", AF),
    (b"SO", AF),
    (b"SR", SA),
    (b"SS", AF),
    (b"ST", AF),
    (b"SV", NA),
    (b"SX", NA),
    (b"SY", AS),
    (b"SZ", AF),
    (b"TC", NA),
    (b"TD", AF),
    (b"TF", AN),
    (b"TG", AF),
    (b"TH", AS),
    (b"TJ", AS),
    (b"TK", OC),
    (b"TL", OC),
    (b"TM", AS),
    (b"TN", AF),
    (b"TO", OC),
    (b"TR", AS),
    (b"TT", NA),
    (b"TV", OC),
    (b"TW", AS),
    (b"TZ", AF),
    (b"UA", EU),
    (b"UG", AF),
    (b"UK", EU),
    (b"UM", OC),
    (b"US", NA),
    (b"UY", SA),
    (b"UZ", AS),
    (b"VA", EU),
    (b"VC", NA),
    (b"VE", SA),
    (b"VG", NA),
    (b"VI", NA),
    (b"VN", AS),
    (b"VU", OC),
    (b"WF", OC),
    (b"WS", OC),
    // Kosovo: a user-assigned code, used by GeoIP2 and the registries alike.
    (b"XK", EU),
    (b"YE", AS),
    (b"YT", AF),
    (b"YU", EU),
    (b"ZA", AF),
    (b"ZM", AF),
    (b"ZW", AF),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_without_duplicates() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn every_continent_is_a_config_continent() {
        for (country, continent) in TABLE {
            let c = std::str::from_utf8(*continent).expect("ascii");
            assert!(
                crate::lines::config::CONTINENTS.contains(&c),
                "{country:?} -> {c}"
            );
        }
    }

    #[test]
    fn known_assignments() {
        let of = |c: &[u8; 2]| continent_of(*c).map(|k| String::from_utf8_lossy(&k).into_owned());
        assert_eq!(of(b"CN").as_deref(), Some("AS"));
        assert_eq!(of(b"HK").as_deref(), Some("AS"));
        assert_eq!(of(b"US").as_deref(), Some("NA"));
        assert_eq!(of(b"RU").as_deref(), Some("EU"));
        assert_eq!(of(b"TR").as_deref(), Some("AS"));
        assert_eq!(of(b"EG").as_deref(), Some("AF"));
        assert_eq!(of(b"BR").as_deref(), Some("SA"));
        assert_eq!(of(b"AU").as_deref(), Some("OC"));
        assert_eq!(of(b"AQ").as_deref(), Some("AN"));
        assert_eq!(of(b"ZZ"), None);
    }

    #[test]
    fn covers_every_officially_assigned_code() {
        // ISO 3166-1 alpha-2, the 249 officially assigned codes.
        const ISO: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH \
            BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU \
            CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE \
            GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ \
            IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV \
            LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF \
            NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU \
            RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ \
            TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA \
            ZM ZW";
        let codes: Vec<&str> = ISO.split_whitespace().collect();
        assert_eq!(codes.len(), 249);
        for code in codes {
            let b = code.as_bytes();
            assert!(
                continent_of([b[0], b[1]]).is_some(),
                "{code} has no continent"
            );
        }
    }
}
