Feature: Growth team repurchase bonus (bonus.growth_repurchase)
  A team at the growth stage is paid for repurchase: when at least 40% of a salesperson's
  revenue of the quarter comes from existing customers, they earn 1% of that revenue from
  existing customers, rounded to the cent, half up. Teams at other stages do not get it.

  Background:
    Given the team "Pioneers" at stage "startup"
    And the team "Builders" at stage "growth"
    And the team "Keepers" at stage "mature"
    And employee "E1" at level "S1" in team "Builders"
    And employee "E2" at level "S1" in team "Pioneers"
    And employee "E3" at level "S1" in team "Keepers"

  Scenario Outline: A growth salesperson with enough repurchase earns 1% of it
    Given the results for "2026-Q1":
      | employee | revenue_new | revenue_existing |
      | E1       | <new>       | <existing>       |
    When the compensation run for "2026-Q1" is made
    Then "E1" receives a "bonus.growth_repurchase" bonus of <bonus> payable

    Examples:
      | case                         | new      | existing | bonus   |
      | exactly 40% repurchase       | 60000    | 40000    | 400.00  |
      | all repurchase               | 0        | 250000   | 2500.00 |
      | no new-customer figure       |          | 1000     | 10.00   |
      | half a cent rounds up        | 59999.50 | 40000.50 | 400.01  |

  Scenario Outline: Below 40% repurchase earns nothing
    Given the results for "2026-Q1":
      | employee | revenue_new | revenue_existing |
      | E1       | <new>       | <existing>       |
    When the compensation run for "2026-Q1" is made
    Then "E1" receives no "bonus.growth_repurchase" bonus

    Examples:
      | case                   | new      | existing |
      | 39% repurchase         | 61000    | 39000    |
      | a cent short of 40%    | 60000.01 | 39999.99 |
      | no revenue at all      | 0        | 0        |
      | no repurchase figure   | 50000    |          |

  Scenario: Teams at other stages get no repurchase bonus
    Given the results for "2026-Q1":
      | employee | revenue_new | revenue_existing |
      | E2       | 50000       | 50000            |
      | E3       | 50000       | 50000            |
    When the compensation run for "2026-Q1" is made
    Then nobody has a "bonus.growth_repurchase" outcome
