Feature: Tiered commission (commission.tiered)
  Each month a salesperson earns commission on the whole of their revenue (new plus
  existing customers). The rate depends on how much of the month's quota they reached:
  below 80%: 3%; from 80% to below 100%: 4%; from 100% to below 120%: 5%;
  120% and above: 6% (the standard 5% raised by 20%).
  The rate reached applies to all the revenue, not only to the part above the step.
  Every amount is rounded to the cent, half up.

  Background:
    Given employee "E1" at level "S2" in team "North"

  Scenario Outline: The rate follows the attainment tier, boundaries included
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | <new>       | <existing>       |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.tiered" commission of <commission> payable

    Examples:
      | case                      | new       | existing | commission |
      | 79% of quota              | 79000     | 0        | 2370.00    |
      | a cent short of 80%       | 79999.99  | 0        | 2400.00    |
      | exactly 80%               | 80000     | 0        | 3200.00    |
      | 99% of quota              | 99000     | 0        | 3960.00    |
      | a cent short of 100%      | 59999.99  | 40000    | 4000.00    |
      | exactly 100%              | 100000    | 0        | 5000.00    |
      | 119% of quota             | 119000    | 0        | 5950.00    |
      | exactly 120%              | 120000    | 0        | 7200.00    |
      | 150% of quota             | 150000    | 0        | 9000.00    |
      | no revenue at all         | 0         | 0        | 0.00       |

  Scenario: The tier rate applies to the whole revenue, not only to the part above the step
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 70000       | 50000            |
    When the compensation run for "2026-01" is made
    # 120% reached: 6% of all 120000, not 3% / 4% / 5% / 6% slice by slice
    Then "E1" receives a "commission.tiered" commission of 7200.00 payable

  Scenario: Half a cent is rounded up
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 1234.50     |                  |
    When the compensation run for "2026-01" is made
    # 3% of 1234.50 is 37.035
    Then "E1" receives a "commission.tiered" commission of 37.04 payable

  Scenario: Less than half a cent is rounded down
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 1234.49     |                  |
    When the compensation run for "2026-01" is made
    # 3% of 1234.49 is 37.0347
    Then "E1" receives a "commission.tiered" commission of 37.03 payable

  Scenario: Each salesperson's commission is rounded on its own line
    Given employee "E2" at level "S1" in team "North"
    And the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 1234.50     |                  |
      | E2       | 100000 | 1234.50     |                  |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.tiered" commission of 37.04 payable
    And "E2" receives a "commission.tiered" commission of 37.04 payable

  Scenario: Revenue from existing customers alone counts when new-customer revenue is not reported
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 |             | 100000           |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.tiered" commission of 5000.00 payable

  Scenario: Revenue from new customers alone counts when existing-customer revenue is not reported
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 120000      |                  |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.tiered" commission of 7200.00 payable

  Scenario: A quota of zero gives no commission and a warning about attainment
    Given the results for "2026-01":
      | employee | quota | revenue_new | revenue_existing |
      | E1       | 0     | 50000       | 10000            |
    When the compensation run for "2026-01" is made
    Then "E1" receives no "commission.tiered" commission
    And "E1" gets a warning from "commission.tiered" naming "attainment"

  Scenario: A missing quota gives no commission and a warning about attainment
    Given the results for "2026-01":
      | employee | quota | revenue_new | revenue_existing |
      | E1       |       | 50000       | 10000            |
    When the compensation run for "2026-01" is made
    Then "E1" receives no "commission.tiered" commission
    And "E1" gets a warning from "commission.tiered" naming "attainment"

  Scenario: No revenue reported at all gives no commission and a warning about attainment
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 |             |                  |
    When the compensation run for "2026-01" is made
    Then "E1" receives no "commission.tiered" commission
    And "E1" gets a warning from "commission.tiered" naming "attainment"

  Scenario: A quarter's run pays no monthly commission
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 300000 | 300000      |                  |
    When the compensation run for "2026-Q1" is made
    Then "E1" has no "commission.tiered" outcome
