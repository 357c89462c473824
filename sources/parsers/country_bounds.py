"""Country bounding boxes (WGS84 lon/lat), to catch coordinates that cannot be in the city's country.

Origin: `bounding-boxes.json` of https://github.com/dkoprowski/country-bounding-boxes (commit
acc5f44f49358c48e79a9a2f6e726e65f3618f61), licence: Public Domain (its README), itself made from
Natural Earth 110m admin-0 (public domain), Nominatim and manual fixes. Its boxes cover each
country's primary area only; `EXTRA_BOXES` adds, as citykpi's own additions (rounded outward from
Natural Earth extents), the outlying parts where large cities lie (Alaska, Hawaii, the Canary
Islands, Ceuta and Melilla, Madeira and the Azores) and two countries it lacks (Macao, Saint
Vincent). A country without a box (BL, BQ, BV, HM, SH, UM) is not checked.

A coordinate passes when it lies in one of the country's boxes widened by `MARGIN_DEG` (the 110m
boxes are coarse: coasts and border towns may stick out by a few km).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MARGIN_DEG = 0.5

BOXES: dict[str, tuple[float, float, float, float]] = {  # (min_lon, min_lat, max_lon, max_lat)
    "AD": (1.42, 42.43, 1.78, 42.65),  # Andorra
    "AE": (51.58, 22.5, 56.4, 26.06),  # United Arab Emirates
    "AF": (60.53, 29.32, 75.16, 38.49),  # Afghanistan
    "AG": (-62.33, 16.92, -61.67, 17.73),  # Antigua and Barbuda
    "AI": (-63.43, 18.15, -62.92, 18.6),  # Anguilla
    "AL": (19.3, 39.62, 21.02, 42.69),  # Albania
    "AM": (43.58, 38.74, 46.51, 41.25),  # Armenia
    "AO": (11.64, -17.93, 24.08, -4.44),  # Angola
    "AQ": (-180.0, -90.0, 180.0, -63.27),  # Antarctica
    "AR": (-73.42, -55.25, -53.63, -21.83),  # Argentina
    "AS": (-177.69, -21.29, -163.69, -7.29),  # American Samoa
    "AT": (9.48, 46.43, 16.98, 49.04),  # Austria
    "AU": (113.34, -43.63, 153.57, -10.67),  # Australia
    "AW": (-70.07, 12.42, -69.85, 12.62),  # Aruba
    "AX": (19.08, 59.45, 21.35, 60.88),  # Åland Islands
    "AZ": (44.79, 38.27, 50.39, 41.86),  # Azerbaijan
    "BA": (15.75, 42.65, 19.6, 45.23),  # Bosnia and Herzegovina
    "BB": (-59.65, 13.03, -59.42, 13.33),  # Barbados
    "BD": (88.08, 20.67, 92.67, 26.45),  # Bangladesh
    "BE": (2.51, 49.53, 6.16, 51.48),  # Belgium
    "BF": (-5.47, 9.61, 2.18, 15.12),  # Burkina Faso
    "BG": (22.38, 41.23, 28.56, 44.23),  # Bulgaria
    "BH": (50.0, 25.5, 50.82, 26.42),  # Bahrain
    "BI": (29.02, -4.5, 30.75, -2.35),  # Burundi
    "BJ": (0.77, 6.14, 3.8, 12.24),  # Benin
    "BM": (-64.88, 32.25, -64.63, 32.39),  # Bermuda
    "BN": (114.2, 4.01, 115.45, 5.45),  # Brunei
    "BO": (-69.59, -22.87, -57.5, -9.76),  # Bolivia
    "BR": (-73.99, -33.77, -34.73, 5.24),  # Brazil
    "BS": (-78.98, 23.71, -77.0, 27.04),  # Bahamas
    "BT": (88.81, 26.72, 92.1, 28.3),  # Bhutan
    "BW": (19.9, -26.83, 29.43, -17.66),  # Botswana
    "BY": (23.2, 51.32, 32.69, 56.17),  # Belarus
    "BZ": (-89.23, 15.89, -88.11, 18.5),  # Belize
    "CA": (-141.0, 41.68, -52.65, 73.23),  # Canada
    "CC": (96.82, -12.2, 96.92, -11.83),  # Cocos (Keeling) Islands
    "CD": (12.18, -13.26, 31.17, 5.26),  # Congo (Kinshasa)
    "CF": (14.46, 2.27, 27.37, 11.14),  # Central African Republic
    "CG": (11.09, -5.04, 18.45, 3.73),  # Congo (Brazzaville)
    "CH": (6.02, 45.78, 10.44, 47.83),  # Switzerland
    "CI": (-8.6, 4.34, -2.56, 10.52),  # Ivory Coast
    "CK": (-171.78, -21.95, -157.34, -8.92),  # Cook Islands
    "CL": (-75.64, -55.61, -66.96, -17.58),  # Chile
    "CM": (8.49, 1.73, 16.01, 12.86),  # Cameroon
    "CN": (73.68, 18.2, 135.03, 53.46),  # China
    "CO": (-78.99, -4.3, -66.88, 12.44),  # Colombia
    "CR": (-85.94, 8.23, -82.55, 11.22),  # Costa Rica
    "CU": (-84.97, 19.86, -74.18, 23.19),  # Cuba
    "CV": (-25.37, 14.8, -22.67, 17.2),  # Cape Verde
    "CW": (-69.37, 11.78, -68.44, 12.59),  # Curaçao
    "CX": (105.57, -10.57, 105.75, -10.4),  # Christmas Island
    "CY": (32.26, 34.57, 34.0, 35.17),  # Cyprus
    "CZ": (12.24, 48.56, 18.85, 51.12),  # Czech Republic
    "DE": (5.99, 47.3, 15.02, 54.98),  # Germany
    "DJ": (41.66, 10.93, 43.32, 12.7),  # Djibouti
    "DK": (8.09, 54.8, 12.69, 57.73),  # Denmark
    "DM": (-61.48, 15.2, -61.25, 15.63),  # Dominica
    "DO": (-71.95, 17.6, -68.32, 19.88),  # Dominican Republic
    "DZ": (-8.68, 19.06, 12.0, 37.12),  # Algeria
    "EC": (-80.97, -4.96, -75.23, 1.38),  # Ecuador
    "EE": (23.34, 57.47, 28.13, 59.61),  # Estonia
    "EG": (24.7, 22.0, 36.87, 31.59),  # Egypt
    "EH": (-17.0, 21.3, -8.5, 27.5),  # Western Sahara
    "ER": (36.32, 12.46, 43.08, 18.0),  # Eritrea
    "ES": (-9.39, 35.95, 3.04, 43.75),  # Spain
    "ET": (32.95, 3.42, 47.79, 14.96),  # Ethiopia
    "FI": (20.65, 59.85, 31.52, 70.16),  # Finland
    "FJ": (177.0, -19.0, 180.0, -16.02),  # Fiji
    "FK": (-61.2, -52.3, -57.75, -51.1),  # Falkland Islands
    "FM": (137.43, 1.03, 163.03, 10.09),  # Micronesia
    "FO": (-7.8, 61.33, -6.25, 62.4),  # Faroe Islands
    "FR": (-5.0, 42.5, 8.3, 51.15),  # France
    "GA": (8.8, -3.98, 14.43, 2.33),  # Gabon
    "GB": (-7.57, 49.96, 1.68, 58.64),  # United Kingdom
    "GD": (-61.8, 11.98, -61.25, 12.67),  # Grenada
    "GE": (39.96, 41.06, 46.64, 43.55),  # Georgia
    "GF": (-54.5, 2.17, -51.65, 5.75),  # French Guiana
    "GG": (-2.7, 49.4, -2.16, 49.73),  # Guernsey
    "GH": (-3.24, 4.71, 1.06, 11.1),  # Ghana
    "GI": (-5.37, 36.1, -5.33, 36.15),  # Gibraltar
    "GL": (-73.3, 60.04, -12.21, 83.65),  # Greenland
    "GM": (-16.84, 13.13, -13.84, 13.88),  # Gambia
    "GN": (-15.13, 7.31, -7.83, 12.59),  # Guinea
    "GP": (-63.15, 15.0, -61.0, 18.12),  # Guadeloupe
    "GQ": (9.31, 1.01, 11.29, 2.28),  # Equatorial Guinea
    "GR": (20.15, 34.92, 26.6, 41.83),  # Greece
    "GS": (-38.3, -59.47, -26.33, -53.97),  # South Georgia and South Sandwich Islands
    "GT": (-92.23, 13.74, -88.23, 17.82),  # Guatemala
    "GU": (144.62, 13.25, 144.96, 13.65),  # Guam
    "GW": (-16.68, 11.04, -13.7, 12.63),  # Guinea Bissau
    "GY": (-61.41, 1.27, -56.54, 8.37),  # Guyana
    "HK": (113.83, 22.15, 114.43, 22.57),  # Hong Kong SAR
    "HN": (-89.35, 12.98, -83.15, 16.01),  # Honduras
    "HR": (13.66, 42.48, 19.39, 46.5),  # Croatia
    "HT": (-74.46, 18.03, -71.62, 19.92),  # Haiti
    "HU": (16.2, 45.76, 22.71, 48.62),  # Hungary
    "ID": (95.29, -10.36, 141.03, 5.48),  # Indonesia
    "IE": (-9.98, 51.67, -6.03, 55.13),  # Ireland
    "IL": (34.27, 29.5, 35.84, 33.28),  # Israel
    "IM": (-4.83, 54.03, -4.32, 54.4),  # Isle of Man
    "IN": (68.18, 7.97, 97.4, 35.49),  # India
    "IO": (71.27, -7.35, 72.48, -5.23),  # British Indian Ocean Territory
    "IQ": (38.79, 29.1, 48.57, 37.39),  # Iraq
    "IR": (44.11, 25.08, 63.32, 39.71),  # Iran
    "IS": (-24.33, 63.5, -13.61, 66.53),  # Iceland
    "IT": (6.75, 36.62, 18.48, 47.12),  # Italy
    "JE": (-2.25, 49.11, -1.93, 49.31),  # Jersey
    "JM": (-78.34, 17.7, -76.2, 18.52),  # Jamaica
    "JO": (34.92, 29.2, 39.2, 33.38),  # Jordan
    "JP": (129.41, 31.03, 145.54, 45.55),  # Japan
    "KE": (33.89, -4.68, 41.86, 5.51),  # Kenya
    "KG": (69.46, 39.28, 80.26, 43.3),  # Kyrgyzstan
    "KH": (102.35, 10.49, 107.61, 14.57),  # Cambodia
    "KI": (179.72, -10.3, -174.53, 4.72),  # Kiribati
    "KM": (43.23, -13.0, 45.32, -11.35),  # Comoros
    "KN": (-62.85, 17.1, -62.52, 17.42),  # Saint Kitts and Nevis
    "KP": (124.27, 37.67, 130.78, 42.99),  # North Korea
    "KR": (126.12, 34.39, 129.47, 38.61),  # South Korea
    "KW": (46.57, 28.53, 48.42, 30.06),  # Kuwait
    "KY": (-81.42, 19.25, -79.72, 19.75),  # Cayman Islands
    "KZ": (46.47, 40.66, 87.36, 55.39),  # Kazakhstan
    "LA": (100.12, 13.88, 107.56, 22.46),  # Laos
    "LB": (35.13, 33.09, 36.61, 34.64),  # Lebanon
    "LC": (-61.07, 13.7, -60.87, 14.1),  # Saint Lucia
    "LI": (9.5, 47.05, 9.65, 47.23),  # Liechtenstein
    "LK": (79.7, 5.97, 81.79, 9.82),  # Sri Lanka
    "LR": (-11.44, 4.36, -7.54, 8.54),  # Liberia
    "LS": (27.0, -30.65, 29.33, -28.65),  # Lesotho
    "LT": (21.06, 53.91, 26.59, 56.37),  # Lithuania
    "LU": (5.74, 49.44, 6.5, 50.2),  # Luxembourg
    "LV": (21.06, 55.62, 28.18, 57.97),  # Latvia
    "LY": (9.32, 19.58, 25.16, 33.14),  # Libya
    "MA": (-17.02, 21.42, -1.12, 35.76),  # Morocco
    "MC": (7.4, 43.72, 7.44, 43.75),  # Monaco
    "MD": (26.62, 45.49, 30.02, 48.47),  # Moldova
    "ME": (18.45, 41.88, 20.34, 43.52),  # Montenegro
    "MF": (-63.36, 17.89, -62.76, 18.19),  # Saint Martin
    "MG": (43.25, -25.6, 50.48, -12.04),  # Madagascar
    "MH": (160.8, 4.57, 172.8, 19.32),  # Marshall Islands
    "MK": (20.46, 40.84, 22.95, 42.32),  # Macedonia
    "ML": (-12.17, 10.1, 4.27, 24.97),  # Mali
    "MM": (92.3, 9.93, 101.18, 28.34),  # Myanmar
    "MN": (87.75, 41.6, 119.77, 52.05),  # Mongolia
    "MP": (144.81, 14.04, 146.15, 20.62),  # Northern Mariana Islands
    "MQ": (-61.97, 14.38, -60.82, 14.87),  # Martinique
    "MR": (-17.06, 14.62, -4.92, 27.4),  # Mauritania
    "MS": (-62.23, 16.67, -62.15, 16.82),  # Montserrat
    "MT": (14.19, 35.78, 14.57, 36.08),  # Malta
    "MU": (56.6, -20.52, 72.47, -5.25),  # Mauritius
    "MV": (72.58, -0.7, 73.7, 7.1),  # Maldives
    "MW": (32.69, -16.8, 35.77, -9.23),  # Malawi
    "MX": (-117.13, 14.54, -86.81, 32.72),  # Mexico
    "MY": (100.09, 0.77, 119.18, 6.93),  # Malaysia
    "MZ": (30.18, -26.74, 40.78, -10.32),  # Mozambique
    "NA": (11.73, -29.05, 25.08, -16.94),  # Namibia
    "NC": (164.03, -22.4, 167.12, -20.11),  # New Caledonia
    "NE": (0.3, 11.66, 15.9, 23.47),  # Niger
    "NF": (167.95, -29.05, 167.95, -29.05),  # Norfolk Island
    "NG": (2.69, 4.24, 14.58, 13.87),  # Nigeria
    "NI": (-87.67, 10.73, -83.15, 15.02),  # Nicaragua
    "NL": (3.31, 50.8, 7.09, 53.51),  # Netherlands
    "NO": (4.99, 58.08, 31.29, 70.92),  # Norway
    "NP": (80.09, 26.4, 88.17, 30.42),  # Nepal
    "NR": (166.92, -0.55, 166.95, -0.5),  # Nauru
    "NU": (-169.92, -19.1, -169.78, -18.93),  # Niue
    "NZ": (166.51, -46.64, 178.52, -34.45),  # New Zealand
    "OM": (52.0, 16.65, 59.81, 26.4),  # Oman
    "PA": (-82.97, 7.22, -77.24, 9.61),  # Panama
    "PE": (-81.41, -18.35, -68.67, -0.06),  # Peru
    "PF": (-152.0, -19.0, -147.0, -14.0),  # French Polynesia
    "PG": (141.0, -10.65, 156.02, -2.5),  # Papua New Guinea
    "PH": (117.17, 5.58, 126.54, 18.51),  # Philippines
    "PK": (60.87, 23.69, 77.84, 37.13),  # Pakistan
    "PL": (14.07, 49.03, 24.03, 54.85),  # Poland
    "PM": (-56.41, 46.75, -56.12, 47.14),  # Saint Pierre and Miquelon
    "PN": (-130.73, -25.07, -124.78, -23.92),  # Pitcairn
    "PR": (-67.24, 17.95, -65.59, 18.52),  # Puerto Rico
    "PS": (34.93, 31.35, 35.55, 32.53),  # West Bank
    "PT": (-9.53, 36.84, -6.39, 42.28),  # Portugal
    "PW": (131.18, 2.9, 134.72, 8.17),  # Palau
    "PY": (-62.69, -27.55, -54.29, -19.34),  # Paraguay
    "QA": (50.74, 24.56, 51.61, 26.11),  # Qatar
    "RE": (55.22, -21.37, 57.0, -20.0),  # Reunion
    "RO": (20.22, 43.69, 29.63, 48.22),  # Romania
    "RS": (18.83, 42.25, 22.99, 46.17),  # Serbia
    "RU": (-180.0, 41.15, 180.0, 81.25),  # Russia
    "RW": (29.02, -2.92, 30.82, -1.13),  # Rwanda
    "SA": (34.63, 16.35, 55.67, 32.16),  # Saudi Arabia
    "SB": (156.49, -10.83, 162.4, -6.6),  # Solomon Islands
    "SC": (46.22, -10.22, 56.27, -3.72),  # Seychelles
    "SD": (21.94, 8.62, 38.41, 22.0),  # Sudan
    "SE": (11.03, 55.36, 23.9, 69.11),  # Sweden
    "SG": (103.5, 1.16, 104.41, 1.5),  # Singapore
    "SI": (13.7, 45.45, 16.56, 46.85),  # Slovenia
    "SJ": (10.5, 74.35, 32.58, 80.82),  # Svalbard
    "SK": (16.88, 47.76, 22.56, 49.57),  # Slovakia
    "SL": (-13.25, 6.79, -10.23, 10.05),  # Sierra Leone
    "SM": (12.4, 43.89, 12.52, 43.99),  # San Marino
    "SN": (-17.63, 12.33, -11.47, 16.6),  # Senegal
    "SO": (40.98, -1.68, 51.13, 12.02),  # Somalia
    "SR": (-58.04, 1.82, -53.96, 6.03),  # Suriname
    "SS": (23.89, 3.51, 35.3, 12.25),  # South Sudan
    "ST": (6.47, -0.02, 7.48, 1.73),  # Sao Tome and Principe
    "SV": (-90.1, 13.15, -87.72, 14.42),  # El Salvador
    "SX": (-63.36, 17.89, -62.76, 18.19),  # Sint Maarten
    "SY": (35.7, 32.31, 42.35, 37.23),  # Syria
    "SZ": (30.68, -27.29, 32.07, -25.66),  # Swaziland
    "TC": (-72.47, 21.12, -71.08, 21.95),  # Turks and Caicos Islands
    "TD": (13.54, 7.42, 23.89, 23.41),  # Chad
    "TF": (68.72, -49.78, 70.56, -48.63),  # French Southern Territories
    "TG": (-0.05, 5.93, 1.87, 11.02),  # Togo
    "TH": (97.38, 5.69, 105.59, 20.42),  # Thailand
    "TJ": (67.44, 36.74, 74.98, 40.96),  # Tajikistan
    "TK": (-172.52, -9.43, -171.18, -8.53),  # Tokelau
    "TL": (124.97, -9.39, 127.34, -8.27),  # East Timor
    "TM": (52.5, 35.27, 66.55, 42.75),  # Turkmenistan
    "TN": (7.52, 30.31, 11.49, 37.35),  # Tunisia
    "TO": (-176.2, -22.33, -150.0, -15.57),  # Tonga
    "TR": (26.04, 35.82, 44.79, 42.14),  # Turkey
    "TT": (-61.95, 10.0, -60.9, 10.89),  # Trinidad and Tobago
    "TV": (176.12, -10.75, 179.88, -5.65),  # Tuvalu
    "TW": (120.11, 21.97, 121.95, 25.3),  # Taiwan
    "TZ": (29.34, -11.72, 40.32, -0.95),  # Tanzania
    "UA": (22.09, 44.36, 40.08, 52.34),  # Ukraine
    "UG": (29.58, -1.44, 35.04, 4.25),  # Uganda
    "US": (-125.0, 25.0, -66.96, 49.5),  # United States
    "UY": (-58.43, -34.95, -53.21, -30.11),  # Uruguay
    "UZ": (55.93, 37.14, 73.06, 45.59),  # Uzbekistan
    "VA": (12.445, 41.9, 12.46, 41.908),  # Vatican City
    "VE": (-73.3, 0.72, -59.76, 12.16),  # Venezuela
    "VG": (-64.96, 18.11, -64.06, 18.95),  # British Virgin Islands
    "VI": (-65.16, 17.62, -64.51, 18.46),  # U.S. Virgin Islands
    "VN": (102.17, 8.6, 109.34, 23.35),  # Vietnam
    "VU": (166.63, -16.6, 167.84, -14.63),  # Vanuatu
    "WF": (-178.39, -14.56, -175.92, -12.98),  # Wallis and Futuna
    "WS": (-173.01, -14.28, -171.19, -13.24),  # Samoa
    "XK": (20.01, 41.86, 21.79, 43.27),  # Republika e Kosovës
    "YE": (42.6, 12.59, 53.11, 19.0),  # Yemen
    "YT": (45.02, -12.99, 45.29, -12.64),  # Mayotte
    "ZA": (16.34, -34.82, 32.83, -22.09),  # South Africa
    "ZM": (21.89, -17.96, 33.49, -8.24),  # Zambia
    "ZW": (25.26, -22.27, 32.85, -15.51),  # Zimbabwe
}

EXTRA_BOXES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "US": ((-180.0, 51.0, -129.0, 71.5), (172.0, 51.0, 180.0, 53.5), (-161.0, 18.5, -154.0, 22.5)),
    "ES": ((-18.5, 27.5, -13.3, 29.5), (-5.5, 35.2, -2.8, 36.0)),
    "PT": ((-31.5, 36.8, -24.9, 39.9), (-17.4, 32.3, -16.1, 33.2)),
    "MO": ((113.52, 22.1, 113.6, 22.22),),
    "VC": ((-61.5, 12.5, -61.1, 13.4),),
}


def country_boxes(iso2: str) -> tuple[tuple[float, float, float, float], ...]:
    """Every box of a country (empty: unknown country, not checked)."""
    primary = (BOXES[iso2],) if iso2 in BOXES else ()
    return primary + EXTRA_BOXES.get(iso2, ())


def in_country(lon: float, lat: float, iso2: str, margin: float = MARGIN_DEG) -> bool:
    """Whether (lon, lat) lies in one of the country's boxes (True for a country without a box)."""
    boxes = country_boxes(iso2)
    if not boxes:
        return True
    return any(x0 - margin <= lon <= x1 + margin and y0 - margin <= lat <= y1 + margin for x0, y0, x1, y1 in boxes)


def in_country_array(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], iso2: str,
                     margin: float = MARGIN_DEG) -> npt.NDArray[np.bool_]:
    """`in_country` for arrays of coordinates (NaN is outside)."""
    boxes = country_boxes(iso2)
    if not boxes:
        return np.isfinite(lon) & np.isfinite(lat)
    inside = np.zeros(np.shape(lon), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (lon >= x0 - margin) & (lon <= x1 + margin) & (lat >= y0 - margin) & (lat <= y1 + margin)
    return inside
