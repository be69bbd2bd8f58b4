Feature: False advertising (compliance.false_advertising)
  A single complaint of false or misleading claims in the month flags the salesperson
  "high" and holds every commission and bonus of theirs in that run until a compliance
  officer reviews it.

  Background:
    Given employee "E1" at level "S1" in team "North"
    And employee "E2" at level "S1" in team "North"

  Scenario Outline: Any complaint flags and holds
    Given the results for "2026-01":
      | employee | quota  | revenue_new | false_ad_complaints |
      | E1       | 100000 | 80000       | <complaints>        |
      | E2       | 100000 | 80000       | 0                   |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.false_advertising" valued "high"
    And "E1" receives a "commission.tiered" commission of 3200.00 held
    And "E1" receives a "commission.new_logo" commission of 800.00 held
    And "E2" has no "compliance.false_advertising" outcome
    And "E2" receives a "commission.tiered" commission of 3200.00 payable
    And "E2" receives a "commission.new_logo" commission of 800.00 payable

    Examples:
      | complaints |
      | 1          |
      | 3          |

  Scenario Outline: No complaint, no flag
    Given the results for "2026-01":
      | employee | quota  | revenue_new | false_ad_complaints |
      | E1       | 100000 | 80000       | <complaints>        |
    When the compensation run for "2026-01" is made
    Then "E1" has no "compliance.false_advertising" outcome
    And "E1" receives a "commission.tiered" commission of 3200.00 payable

    Examples:
      | case            | complaints |
      | zero complaints | 0          |
      | not reported    |            |

  Scenario: Two flags on one salesperson still hold each payout once
    Given the results for "2026-01":
      | employee | quota  | revenue_new | false_ad_complaints | max_discount_pct |
      | E1       | 100000 | 80000       | 1                   | 0.06             |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.false_advertising" valued "high"
    And "E1" gets the flag "compliance.discount_authority" valued "high"
    And "E1" receives a "commission.tiered" commission of 3200.00 held
