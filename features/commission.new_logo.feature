Feature: New-logo commission (commission.new_logo)
  On top of the tiered commission, a salesperson earns 1% of the month's revenue from
  new customers, rounded to the cent, half up.

  Background:
    Given employee "E1" at level "S1" in team "North"

  Scenario Outline: Revenue from new customers pays 1%
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | <new>       | 30000            |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.new_logo" commission of <commission> payable

    Examples:
      | new      | commission |
      | 25000    | 250.00     |
      | 1234.50  | 12.35      |
      | 0.50     | 0.01       |

  Scenario: No revenue from new customers pays nothing
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 0           | 80000            |
    When the compensation run for "2026-01" is made
    Then "E1" receives no "commission.new_logo" commission
    But "E1" receives a "commission.tiered" commission of 3200.00 payable

  Scenario: New-logo commission does not need a quota
    Given the results for "2026-01":
      | employee | quota | revenue_new | revenue_existing |
      | E1       |       | 40000       |                  |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.new_logo" commission of 400.00 payable
    And "E1" receives no "commission.tiered" commission
