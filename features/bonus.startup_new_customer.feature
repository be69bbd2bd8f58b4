Feature: Startup team new-customer bonus (bonus.startup_new_customer)
  A team at the startup stage is paid for winning customers: each of its salespeople earns
  300.00 per new customer of the quarter. Teams at other stages do not get this bonus.

  Background:
    Given the team "Pioneers" at stage "startup"
    And the team "Builders" at stage "growth"
    And the team "Keepers" at stage "mature"
    And employee "E1" at level "S1" in team "Pioneers"
    And employee "E2" at level "S1" in team "Builders"
    And employee "E3" at level "S1" in team "Keepers"

  Scenario Outline: A startup salesperson earns 300.00 per new customer
    Given the results for "2026-Q1":
      | employee | new_customers |
      | E1       | <customers>   |
    When the compensation run for "2026-Q1" is made
    Then "E1" receives a "bonus.startup_new_customer" bonus of <bonus> payable

    Examples:
      | customers | bonus   |
      | 1         | 300.00  |
      | 3         | 900.00  |
      | 12        | 3600.00 |

  Scenario: The quarter's new customers add up from the months
    Given the results:
      | period  | employee | new_customers |
      | 2026-01 | E1       | 1             |
      | 2026-02 | E1       |               |
      | 2026-03 | E1       | 2             |
    When the compensation run for "2026-Q1" is made
    Then "E1" receives a "bonus.startup_new_customer" bonus of 900.00 payable

  Scenario: Teams at other stages get no new-customer bonus
    Given the results for "2026-Q1":
      | employee | new_customers |
      | E2       | 3             |
      | E3       | 3             |
    When the compensation run for "2026-Q1" is made
    Then nobody has a "bonus.startup_new_customer" outcome

  Scenario Outline: No new customer, no bonus
    Given the results for "2026-Q1":
      | employee | quota  | new_customers |
      | E1       | 100000 | <customers>   |
    When the compensation run for "2026-Q1" is made
    Then "E1" receives no "bonus.startup_new_customer" bonus

    Examples:
      | case         | customers |
      | zero         | 0         |
      | not reported |           |
