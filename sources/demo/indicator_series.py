"""Demoville's statistics for the complete U4SSC / SDG 11 indicator set (issue 3).

The generator's first series (`generator._city_statistics`) cover the KPIs the foundation computed.
These add what every other indicator needs, in the same two files: long rows for the statistics
office export (`statistik_stadt.csv`) and wide columns for the utilities file (`versorgung.csv`).

Values are fixed paths or simple functions of the population and of the earlier series, with no
random draws: the earlier series keep their numbers, and the ratios stay plausible and internally
consistent (potable <= basic water, sewer <= sanitation, R&D < 5 % of GDP, nested wastewater
treatment levels, mode shares adding up to 100 %). Magnitudes follow German cities of ~500,000
inhabitants; the U4SSC verification reports (u4ssc_notes.md section 7) gave the order of magnitude
where a KPI is rarely published in Germany.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# (Merkmal, Einheit, decimals, one value per year of YEARS)
Series = tuple[str, str, int, FloatArray]

YES_NO = "1 = ja, 0 = nein"
# Data points of EC:I:UP:2A, with the wording of a German Stadtentwicklungskonzept. Demoville's
# strategy does not (yet) address social inclusiveness: one No among the Yes answers.
PLANNING_ASPECTS = {
    "compact": ("kompakte Siedlungsentwicklung", 1.0),
    "connected": ("Vernetzung der Standorte", 1.0),
    "integrated": ("Nutzungsmischung", 1.0),
    "inclusive": ("soziale Inklusion", 0.0),
    "resilient": ("Klimaresilienz", 1.0),
}
PLANNING_LABEL = "Stadtentwicklungskonzept: {}"
COMMUTER_MODES = {"private vehicle": "Pkw/Motorrad", "public transport": "ÖPNV", "walking": "zu Fuß",
                  "cycling": "Fahrrad", "para transport": "Fahrdienste und Taxi"}
COMMUTER_LABEL = "Berufspendler nach Hauptverkehrsmittel: {}"
SURVEY_GROUPS = {"total": "insgesamt", "female": "Frauen", "male": "Männer"}


@dataclass(frozen=True)
class CityTotals:
    """City totals per year (index = year of YEARS) that the new series are scaled from."""

    population: FloatArray
    households: FloatArray
    adults: FloatArray  # aged 15 and over
    children_0_14: FloatArray
    earlier: Mapping[str, FloatArray]  # the generator's first series by Merkmal, unrounded

    @property
    def employed(self) -> FloatArray:
        return self.earlier["Erwerbspersonen"] - self.earlier["Arbeitslose"]


def _ramp(n: int) -> Callable[[float, float], FloatArray]:
    t = np.arange(n, dtype=np.float64) / (n - 1)

    def ramp(start: float, end: float) -> FloatArray:
        result: FloatArray = start + (end - start) * t
        return result

    return ramp


def _linear(start: float, step: float, n: int) -> FloatArray:
    """start, start + step, ... (n values)."""
    result: FloatArray = start + step * np.arange(n, dtype=np.float64)
    return result


def _fixed(*values: float) -> FloatArray:
    return np.array(values, dtype=np.float64)


def _part(total: FloatArray, share: FloatArray) -> FloatArray:
    """A whole-number part of a whole-number total (never above it)."""
    result: FloatArray = np.minimum(np.rint(total * share), np.rint(total))
    return result


def statistics_series(city: CityTotals) -> list[Series]:
    """New long rows of statistik_stadt.csv, in file order (after the earlier series)."""
    return [*_economy(city), *_environment(city), *_society(city), *_sdg(city)]


def _economy(city: CityTotals) -> list[Series]:
    pop, hh = city.population, city.households
    ramp = _ramp(pop.size)
    customers = np.rint(hh * 1.105)
    interruptions = np.rint(customers * _fixed(0.29, 0.33, 0.27, 0.31, 0.26, 0.28))
    caidi_min = _fixed(41.2, 44.0, 39.5, 42.8, 38.9, 40.6)
    grid_km = _linear(3_480.0, 6.0, pop.size)
    major_km = _linear(418.0, 1.5, pop.size)
    signals = np.rint(_linear(396.0, 3.0, pop.size))
    catalogue = np.rint(_linear(1_040.0, 45.0, pop.size))
    procedures = _fixed(2_712, 2_655, 2_790, 2_836, 2_874, 2_903)
    gdp_mio = _fixed(24_100.0, 23_350.0, 24_600.0, 26_300.0, 27_450.0, 28_200.0)
    commuters = np.rint(city.employed * 0.93)
    shares = {"private vehicle": ramp(0.41, 0.37), "public transport": ramp(0.22, 0.235),
              "walking": ramp(0.13, 0.125), "cycling": ramp(0.225, 0.26)}
    modes = {mode: np.rint(commuters * share) for mode, share in shares.items()}
    modes["para transport"] = commuters - sum(modes.values())  # the rest: mode counts add up exactly
    free_flow = _fixed(18.4, 18.3, 18.4, 18.5, 18.4, 18.5)
    cars = np.rint(pop * ramp(0.452, 0.446))
    buildings = np.rint(_linear(612.0, 2.0, pop.size))
    floor_m2 = _linear(1_186_000.0, 6_500.0, pop.size)
    return [
        ("Einwohner mit 3G-Mobilfunkversorgung", "Personen", 0, _part(pop, ramp(0.988, 0.993))),
        ("Einwohner mit 4G-Mobilfunkversorgung (LTE)", "Personen", 0, _part(pop, ramp(0.962, 0.994))),
        ("Öffentliche WLAN-Hotspots", "Anzahl", 0, _linear(240.0, 24.0, pop.size)),
        ("Länge des Stromverteilnetzes", "km", 1, grid_km),
        ("Stromverteilnetz mit IKT-Überwachung (SCADA)", "km", 1, grid_km * ramp(0.34, 0.52)),
        ("Stromkunden", "Anzahl", 0, customers),
        ("Stromkunden mit Lastmanagement (Demand Response)", "Anzahl", 0, _part(customers, ramp(0.002, 0.011))),
        ("Versorgungsunterbrechungen Strom (Kundenunterbrechungen)", "Anzahl", 0, interruptions),
        # Published in hours; the canonical variable is in minutes.
        ("Unterbrechungsdauer Strom (Kundenstunden)", "Stunden", 1, interruptions * caidi_min / 60.0),
        ("Hauptverkehrsstraßen", "km", 1, major_km),
        ("Hauptverkehrsstraßen mit IKT-Verkehrserfassung", "km", 1, major_km * ramp(0.31, 0.47)),
        ("Knotenpunkte mit Lichtsignalanlage", "Anzahl", 0, signals),
        ("Knotenpunkte mit adaptiver Steuerung oder ÖPNV-Bevorrechtigung", "Anzahl", 0,
         _part(signals, ramp(0.18, 0.33))),
        ("Datensätze im Datenkatalog der Verwaltung", "Anzahl", 0, catalogue),
        ("Veröffentlichte offene Datensätze (Open Data)", "Anzahl", 0, _part(catalogue, ramp(0.29, 0.46))),
        ("Online verfügbare Verwaltungsleistungen", "Anzahl", 0, _linear(128.0, 19.0, pop.size)),
        ("Vergabeverfahren", "Anzahl", 0, procedures),
        ("Elektronische Vergabeverfahren (E-Vergabe)", "Anzahl", 0, _part(procedures, ramp(0.64, 0.88))),
        ("Bruttoinlandsprodukt (nominal)", "Mio. EUR", 1, gdp_mio),
        ("Interne Ausgaben für Forschung und Entwicklung", "Mio. EUR", 1, gdp_mio * ramp(0.024, 0.028)),
        ("Erteilte Patente (Anmelder mit Sitz in der Stadt)", "Anzahl", 0, _fixed(188, 196, 201, 214, 209, 222)),
        ("Erwerbstätige im Gastgewerbe und Tourismus", "Personen", 0,
         np.rint(city.employed * ramp(0.041, 0.046) * _fixed(1.0, 0.86, 0.9, 1.0, 1.0, 1.0))),
        ("Erwerbstätige in der IKT-Branche", "Personen", 0, np.rint(city.employed * ramp(0.037, 0.045))),
        ("Haushalte mit sicher verwalteter Trinkwasserversorgung", "Haushalte", 0, _part(hh, ramp(0.9978, 0.9986))),
        ("Haushalte mit Anschluss an die öffentliche Kanalisation", "Haushalte", 0, _part(hh, ramp(0.9912, 0.9934))),
        ("Haushalte mit regelmäßiger Abfallabholung", "Haushalte", 0, hh),
        ("Berufspendler insgesamt", "Personen", 0, commuters),
        *[(COMMUTER_LABEL.format(label), "Personen", 0, modes[mode]) for mode, label in COMMUTER_MODES.items()],
        ("Reisezeit Referenzrouten in der Hauptverkehrszeit (Mittel)", "Minuten", 1,
         free_flow * _fixed(1.36, 1.18, 1.24, 1.31, 1.33, 1.34)),
        ("Reisezeit Referenzrouten bei freiem Verkehrsfluss (Mittel)", "Minuten", 1, free_flow),
        ("Leihfahrräder (Bikesharing)", "Anzahl", 0, _fixed(900, 950, 1_100, 1_400, 1_650, 1_900)),
        ("Carsharing-Fahrzeuge", "Anzahl", 0, _fixed(260, 275, 290, 320, 355, 390)),
        ("Pkw-Bestand", "Anzahl", 0, cars),
        ("Pkw mit Elektro-, Plug-in-Hybrid- oder Brennstoffzellenantrieb", "Anzahl", 0,
         _part(cars, _fixed(0.006, 0.011, 0.021, 0.033, 0.045, 0.056))),
        ("Öffentliche Gebäude", "Anzahl", 0, buildings),
        ("Öffentliche Gebäude mit Gebäudeleittechnik", "Anzahl", 0, _part(buildings, ramp(0.19, 0.31))),
        ("Nettogrundfläche öffentlicher Gebäude", "m²", 0, floor_m2),
        ("Nettogrundfläche öffentlicher Gebäude mit Nachhaltigkeitszertifikat", "m²", 0,
         _part(floor_m2, ramp(0.031, 0.058))),
        ("Endenergieverbrauch öffentlicher Gebäude", "MWh", 1, floor_m2 * ramp(168.0, 149.0) / 1000.0),
        ("Fußgängerzonen", "ha", 1, _fixed(38.2, 38.2, 39.6, 41.0, 41.0, 43.5)),
        *[(PLANNING_LABEL.format(label), YES_NO, 0, np.full(pop.size, answer))
          for label, answer in PLANNING_ASPECTS.values()],
    ]


def _environment(city: CityTotals) -> list[Series]:
    pop, hh = city.population, city.households
    ramp = _ramp(pop.size)
    sites = np.rint(_linear(598.0, 14.0, pop.size))
    # Strategic noise maps are redrawn every five years (2017, 2022): the share steps, it does not drift.
    noise_share = _fixed(0.231, 0.231, 0.231, 0.218, 0.218, 0.218)
    heating_degree = _fixed(1.0, 0.96, 1.05, 0.93, 0.94, 0.92)  # weather: a cold 2021, mild 2022-2024
    return [
        ("Haushalte mit auditiertem Wassersicherheitsplan", "Haushalte", 0, _part(hh, ramp(0.55, 0.80))),
        ("Mobilfunkstandorte", "Anzahl", 0, sites),
        ("Mobilfunkstandorte mit Standortbescheinigung (EMF-Grenzwerte eingehalten)", "Anzahl", 0, sites),
        ("Einwohner mit Lärmbelastung über 55 dB(A) LDEN", "Personen", 0, _part(pop, noise_share)),
        ("Naturschutz- und Landschaftsschutzgebiete", "ha", 1, _fixed(1_472.0, 1_472.0, 1_488.5, 1_488.5,
                                                                      1_503.2, 1_503.2)),
        ("Öffentliche Sport- und Freizeitanlagen", "m²", 0, _linear(2_310_000.0, 8_000.0, pop.size)),
        # Published in MWh; the canonical variable is in GJ (x 3.6).
        ("Wärmeverbrauch der privaten Haushalte (Raumwärme und Warmwasser)", "MWh", 1, pop * 5.3 * heating_degree),
    ]


def _society(city: CityTotals) -> list[Series]:
    pop = city.population
    ramp = _ramp(pop.size)
    children_0_3 = np.rint(city.children_0_14 * 4.0 / 15.0 * 0.97)
    municipal_heritage = _fixed(5_820.0, 5_710.0, 6_050.0, 6_240.0, 6_480.0, 6_610.0)  # thousand EUR
    public_heritage = municipal_heritage + _fixed(10_900.0, 11_300.0, 11_650.0, 12_100.0, 12_500.0, 12_900.0)
    private_heritage = _fixed(4_600.0, 3_900.0, 4_200.0, 4_850.0, 5_050.0, 5_300.0)
    income_mio: FloatArray = pop * 23_800.0 * 1.025 ** np.arange(pop.size) / 1e6
    calls = np.rint(pop * _fixed(0.121, 0.117, 0.123, 0.125, 0.127, 0.128))
    food_t: FloatArray = pop * 0.72
    return [
        ("Schülerinnen und Schüler mit IKT-Zugang im Unterricht", "Personen", 0,
         _part(city.earlier["Schülerinnen und Schüler"], ramp(0.71, 0.93))),
        ("Einwohner mit Hochschulabschluss", "Personen", 0, _part(pop, ramp(0.212, 0.236))),
        ("Alphabetisierte Einwohner ab 15 Jahren", "Personen", 0, _part(city.adults, np.full(pop.size, 0.991))),
        ("Versicherte mit elektronischer Patientenakte", "Personen", 0,
         _part(pop, _fixed(0.0, 0.0, 0.004, 0.011, 0.015, 0.020))),
        ("Lebendgeborene", "Anzahl", 0, np.rint(pop * _fixed(0.0094, 0.0092, 0.0095, 0.0089, 0.0085, 0.0083))),
        ("Müttersterbefälle", "Anzahl", 0, _fixed(0, 1, 0, 0, 0, 0)),
        ("Einwohner mit Krankenversicherungsschutz", "Personen", 0, _part(pop, np.full(pop.size, 0.9991))),
        ("Ausgaben für Kulturerbe und Denkmalpflege: städtischer Haushalt", "Tsd. EUR", 1, municipal_heritage),
        ("Ausgaben für Kulturerbe und Denkmalpflege: öffentliche Hand (Bund, Land, Stadt)", "Tsd. EUR", 1,
         public_heritage),
        ("Ausgaben für Kulturerbe und Denkmalpflege: private Träger und Stiftungen", "Tsd. EUR", 1, private_heritage),
        ("Ausgaben für Kulturerbe und Denkmalpflege: insgesamt", "Tsd. EUR", 1, public_heritage + private_heritage),
        ("Bereinigte Ausgaben des städtischen Haushalts", "Mio. EUR", 1,
         _fixed(2_010.0, 2_135.0, 2_190.0, 2_260.0, 2_395.0, 2_480.0)),
        # The World Bank's PPP conversion factor (EUR per international dollar), which SDG 11.4.1 needs.
        ("PPP-Umrechnungsfaktor (EUR je internationalem Dollar)", "EUR/PPP$", 3,
         _fixed(0.742, 0.741, 0.735, 0.721, 0.736, 0.740)),
        ("Kultureinrichtungen (Museen, Bibliotheken, Theater)", "Anzahl", 0, _fixed(96, 96, 97, 98, 98, 99)),
        ("Einwohner in unzureichenden Wohnverhältnissen (Notunterkünfte, Überbelegung)", "Personen", 0,
         _part(pop, _fixed(0.0041, 0.0043, 0.0044, 0.0046, 0.0047, 0.0047))),
        ("Wohnkosten der privaten Haushalte", "Mio. EUR", 1, income_mio * ramp(0.268, 0.287)),
        ("Verfügbares Einkommen der privaten Haushalte", "Mio. EUR", 1, income_mio),
        ("Durchschnittlicher Bruttostundenverdienst: Frauen", "EUR/h", 2,
         _fixed(19.85, 20.30, 20.95, 21.70, 22.80, 23.70)),
        ("Durchschnittlicher Bruttostundenverdienst: Männer", "EUR/h", 2,
         _fixed(24.60, 24.95, 25.60, 26.45, 27.70, 28.60)),
        # Printed x 100, as German statistics offices do; the canonical index is 0-1.
        ("Gini-Koeffizient der Äquivalenzeinkommen", "0-100", 1, _fixed(29.4, 29.8, 30.1, 29.6, 29.3, 29.5)),
        ("Betreuungsplätze für Kinder von 0 bis 3 Jahren", "Anzahl", 0, np.rint(children_0_3 * ramp(0.46, 0.54))),
        ("Kinder im Alter von 0 bis 3 Jahren", "Personen", 0, children_0_3),
        # 2021: the heavy-rain flood year.
        ("Todesopfer durch Naturereignisse", "Personen", 0, _fixed(0, 1, 2, 1, 1, 1)),
        ("Vermisste Personen nach Naturereignissen", "Personen", 0, np.zeros(pop.size)),
        ("Direkt betroffene Personen durch Naturereignisse", "Personen", 0, _fixed(140, 95, 620, 260, 215, 290)),
        ("Direkte wirtschaftliche Schäden durch Naturereignisse", "Tsd. EUR", 1,
         _fixed(1_850.0, 1_200.0, 9_400.0, 3_100.0, 2_650.0, 3_450.0)),
        ("Direkte wirtschaftliche Schäden durch Naturereignisse: kritische Infrastruktur", "Tsd. EUR", 1,
         _fixed(520.0, 310.0, 3_100.0, 930.0, 740.0, 1_080.0)),
        ("Beschädigte Einrichtungen der kritischen Infrastruktur (Naturereignisse)", "Anzahl", 0,
         _fixed(2, 1, 9, 4, 3, 4)),
        ("Unterbrechungen grundlegender Versorgungsleistungen (Naturereignisse)", "Anzahl", 0,
         _fixed(3, 2, 11, 6, 5, 7)),
        ("Lokale Strategie zur Katastrophenvorsorge (Sendai-konform)", YES_NO, 0, _fixed(0, 0, 1, 1, 1, 1)),
        ("Einwohner in Überschwemmungs- und Gefahrengebieten", "Personen", 0,
         _part(pop, _fixed(0.0191, 0.0191, 0.0196, 0.0196, 0.0198, 0.0198))),
        ("Notrufeinsätze (Polizei, Feuerwehr, Rettungsdienst)", "Anzahl", 0, calls),
        # Published in hours; the canonical variable is in minutes.
        ("Summe der Eintreffzeiten der Notrufeinsätze", "Stunden", 1,
         calls * _fixed(8.6, 8.3, 8.7, 8.9, 8.8, 8.7) / 60.0),
        ("Nahrungsmittelversorgung der Stadt", "t", 0, np.rint(food_t)),
        ("Nahrungsmittelversorgung aus dem Umkreis von 100 km", "t", 0, _part(food_t, ramp(0.17, 0.21))),
    ]


def _sdg(city: CityTotals) -> list[Series]:
    n = city.population.size
    respondents = {"female": _fixed(1_512, 1_478, 1_533, 1_547, 1_521, 1_560),
                   "male": _fixed(1_402, 1_391, 1_440, 1_435, 1_426, 1_449)}
    victims = {"female": np.rint(respondents["female"] * _fixed(0.104, 0.092, 0.095, 0.101, 0.098, 0.097)),
               "male": np.rint(respondents["male"] * _fixed(0.061, 0.055, 0.058, 0.063, 0.060, 0.059))}
    respondents["total"] = respondents["female"] + respondents["male"]
    victims["total"] = victims["female"] + victims["male"]
    return [
        ("Beteiligungsgremium der Zivilgesellschaft in der Stadtplanung (Stadtentwicklungsbeirat)", YES_NO, 0,
         np.ones(n)),
        ("Nationale Stadtentwicklungspolitik", YES_NO, 0, np.ones(n)),
        # Germany's resilience strategy (Deutsche Strategie zur Stärkung der Resilienz) dates from July 2022.
        ("Nationale Strategie zur Katastrophenvorsorge (Sendai-konform)", YES_NO, 0, _fixed(0, 0, 0, 1, 1, 1)),
        *[(f"Bürgerumfrage Sicherheit: Befragte {label}", "Personen", 0, respondents[group])
          for group, label in SURVEY_GROUPS.items()],
        *[(f"Bürgerumfrage Sicherheit: Opfer körperlicher oder sexueller Belästigung (12 Monate) {label}",
           "Personen", 0, victims[group]) for group, label in SURVEY_GROUPS.items()],
        # SDG 11.1.1's two components, each its own series (issue #15).
        ("Einwohner in Slum-Haushalten (UN-Habitat-Kriterien)", "Personen", 0,
         _part(city.population, _fixed(0.0022, 0.0022, 0.0023, 0.0023, 0.0024, 0.0024))),
        ("Einwohner mit Wohnkostenbelastung über 30 % des Einkommens", "Personen", 0,
         _part(city.population, _fixed(0.121, 0.124, 0.126, 0.131, 0.135, 0.133))),
    ]


# ---- versorgung.csv: extra columns ------------------------------------------------------------------

UTILITY_COLUMNS = ("abfall_offene_verbrennung_t", "abfall_wilde_ablagerung_t", "abfall_aufkommen_t",
                   "abfall_kontrolliert_t", "wasserverbrauch_suesswasser_ML", "abwasser_gesamt_m3",
                   "abwasser_primaer_m3", "abwasser_sekundaer_m3", "abwasser_tertiaer_m3", "wassernetz_km",
                   "wassernetz_ikt_km", "kanalnetz_km", "kanalnetz_ikt_km")


def utility_columns(year_index: int, n_years: int, waste_total_t: float, waste_parts_t: Sequence[float],
                    consumption_ml: float, billed_m3: float) -> list[str]:
    """The extra versorgung.csv cells of one year, in UTILITY_COLUMNS order, as printed.

    `waste_parts_t` are the printed landfill, incineration and recycling tonnages: all three go to
    controlled facilities in Demoville (a sanitary landfill, an incinerator with flue gas cleaning,
    sorting and composting plants), the 'other' rest does not count. Nothing is burnt in the open or
    dumped: those columns are published as 0.
    """
    t = year_index / (n_years - 1)

    def lerp(start: float, end: float) -> float:
        return start + (end - start) * t

    generated = round(waste_total_t * 1.0018, 1)  # littering and illegal dumping never collected
    controlled = round(sum(waste_parts_t), 1)
    wastewater = billed_m3 * 1.12  # billed water plus infiltration and storm water in combined sewers
    primary = wastewater * lerp(0.991, 0.993)  # the rest is in septic tanks outside the sewer network
    water_km, sewer_km = 1_462.0 + 4.0 * year_index, 1_128.0 + 3.0 * year_index
    return [
        "0.0", "0.0", f"{generated:.1f}", f"{controlled:.1f}", f"{consumption_ml * 0.975:.1f}",
        f"{wastewater:.0f}", f"{primary:.0f}", f"{primary:.0f}", f"{primary * lerp(0.955, 0.978):.0f}",
        f"{water_km:.1f}", f"{water_km * lerp(0.12, 0.24):.1f}",
        f"{sewer_km:.1f}", f"{sewer_km * lerp(0.05, 0.13):.1f}",
    ]
