Feature: Discount beyond authority (compliance.discount_authority)
  Each level may grant discounts up to its authority: S1 5%, S2 8%, S3 10%, M1 15%.
  A salesperson whose largest discount of the month is above that authority is flagged
  "high", and every commission and bonus of theirs in that run is held until a compliance
  officer reviews the flag. A discount exactly at the authority is allowed. Other
  salespeople's payouts stay payable.

  Scenario Outline: A discount exactly at the level's authority is allowed
    Given employee "E1" at level "<level>" in team "North"
    And the results for "2026-01":
      | employee | quota  | revenue_new | max_discount_pct |
      | E1       | 100000 | 100000      | <discount>       |
    When the compensation run for "2026-01" is made
    Then "E1" has no "compliance.discount_authority" outcome
    And "E1" receives a "commission.tiered" commission of 5000.00 payable
    And "E1" receives a "commission.new_logo" commission of 1000.00 payable

    Examples:
      | level | discount |
      | S1    | 0.05     |
      | S2    | 0.08     |
      | S3    | 0.10     |
      | M1    | 0.15     |
      | S2    | 0        |

  Scenario Outline: A discount just above the level's authority is flagged and holds the payouts
    Given employee "E1" at level "<level>" in team "North"
    And the results for "2026-01":
      | employee | quota  | revenue_new | max_discount_pct |
      | E1       | 100000 | 100000      | <discount>       |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.discount_authority" valued "high"
    And "E1" receives a "commission.tiered" commission of 5000.00 held
    And "E1" receives a "commission.new_logo" commission of 1000.00 held

    Examples:
      | level | discount |
      | S1    | 0.0501   |
      | S2    | 0.0801   |
      | S3    | 0.1001   |
      | M1    | 0.1501   |

  Scenario: A discount one level may grant is beyond another level's authority
    Given employee "E1" at level "S1" in team "North"
    And employee "E2" at level "S3" in team "North"
    And the results for "2026-01":
      | employee | quota  | revenue_new | max_discount_pct |
      | E1       | 100000 | 100000      | 0.09             |
      | E2       | 100000 | 100000      | 0.09             |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.discount_authority" valued "high"
    And "E2" has no "compliance.discount_authority" outcome

  Scenario: Only the flagged salesperson's payouts are held
    Given employee "E1" at level "S2" in team "North"
    And employee "E2" at level "S2" in team "North"
    And the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing | max_discount_pct |
      | E1       | 100000 | 50000       | 70000            | 0.0801           |
      | E2       | 100000 | 50000       | 30000            | 0.08             |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.discount_authority" valued "high"
    And "E1" receives a "commission.tiered" commission of 7200.00 held
    And "E1" receives a "commission.new_logo" commission of 500.00 held
    And "E2" has no "compliance.discount_authority" outcome
    And "E2" receives a "commission.tiered" commission of 3200.00 payable
    And "E2" receives a "commission.new_logo" commission of 500.00 payable

  Scenario: The champion's lunch is not held, only money
    Given employee "E1" at level "S2" in team "North"
    And the results for "2026-01":
      | employee | quota  | revenue_new | max_discount_pct |
      | E1       | 100000 | 100000      | 0.20             |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.discount_authority" valued "high"
    And "E1" gets the award "award.monthly_champion" valued "CEO lunch"

  Scenario: No discount reported raises no flag
    Given employee "E1" at level "S1" in team "North"
    And the results for "2026-01":
      | employee | quota  | revenue_new | max_discount_pct |
      | E1       | 100000 | 100000      |                  |
    When the compensation run for "2026-01" is made
    Then "E1" has no "compliance.discount_authority" outcome
    And "E1" receives a "commission.tiered" commission of 5000.00 payable
