Feature: Marginal tiers (a tier table with mode: marginal)
  A tier table pays retroactively by default: the rate of the tier reached applies to the
  whole base. With `mode: marginal` each slice of the base is paid at its own tier's rate.
  Here the tiered commission of the library is switched to marginal: 3% of the revenue up
  to 80% of quota, 4% of the next 20% of quota, 5% of the next 20%, 6% of the rest.
  The slices are added exactly and the line is rounded once, to the cent, half up. A
  negative attainment (returns above sales) leaves the whole base in the first tier.

  Background:
    Given employee "E1" at level "S2" in team "North"
    And the rule "commission.tiered" changed:
      | field       | value    |
      | action.mode | marginal |

  Scenario Outline: Each slice at its own rate, boundaries included
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | <new>       | <existing>       |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.tiered" commission of <commission> payable

    Examples:
      | case                       | new       | existing | commission |
      | 79% of quota               | 79000     | 0        | 2370.00    |
      | a cent short of 80%        | 79999.99  | 0        | 2400.00    |
      | exactly 80%                | 80000     | 0        | 2400.00    |
      | 80% and 100.00 more        | 80100     | 0        | 2404.00    |
      | 99% of quota               | 99000     | 0        | 3160.00    |
      | a cent short of 100%       | 59999.99  | 40000    | 3200.00    |
      | exactly 100%               | 100000    | 0        | 3200.00    |
      | 119% of quota              | 119000    | 0        | 4150.00    |
      | exactly 120%               | 120000    | 0        | 4200.00    |
      | 150% of quota              | 150000    | 0        | 6000.00    |
      | no revenue at all          | 0         | 0        | 0.00       |
      | returns above sales        | -1000     | 0        | -30.00     |

  Scenario: The slices are added exactly and the line is rounded once
    Given the results for "2026-01":
      | employee | quota    | revenue_new | revenue_existing |
      | E1       | 1000.625 | 800.625     |                  |
    When the compensation run for "2026-01" is made
    # 3% of 800.50 is 24.015 and 4% of 0.125 is 0.005: 24.02 in all, not 24.02 + 0.01
    Then "E1" receives a "commission.tiered" commission of 24.02 payable

  Scenario: A missing quota still gives no commission and a warning about attainment
    Given the results for "2026-01":
      | employee | quota | revenue_new | revenue_existing |
      | E1       |       | 50000       | 10000            |
    When the compensation run for "2026-01" is made
    Then "E1" receives no "commission.tiered" commission
    And "E1" gets a warning from "commission.tiered" naming "attainment"
