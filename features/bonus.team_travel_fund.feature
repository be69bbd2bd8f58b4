Feature: Team travel fund (bonus.team_travel_fund)
  When a team reaches its quarter's target, each member gets 500.00 for the travel fund.
  The team's members are its salespeople with results for the quarter; the team's
  attainment is the sum of their revenue over the sum of their quotas (a figure that is
  missing is left out of the sum). There is no team attainment when the team's quota is 0.

  Background:
    Given employee "E1" at level "S1" in team "North"
    And employee "E2" at level "S2" in team "North"
    And employee "E3" at level "S1" in team "South"

  Scenario: The team reaches exactly 100%: every member gets 500.00, even below their own quota
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 40000       | 20000            |
      | E2       | 100000 | 100000      | 40000            |
      | E3       | 100000 | 50000       |                  |
    When the compensation run for "2026-Q1" is made
    Then only "E1, E2" receive a "bonus.team_travel_fund" bonus of 500.00 payable

  Scenario: The team reaches 99%: nobody gets the fund
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 39000       | 20000            |
      | E2       | 100000 | 100000      | 40000            |
    When the compensation run for "2026-Q1" is made
    Then nobody has a "bonus.team_travel_fund" outcome

  Scenario: A team a cent short of its target gets nothing
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 99999.99    |
      | E2       | 100000 | 100000      |
    When the compensation run for "2026-Q1" is made
    Then nobody has a "bonus.team_travel_fund" outcome

  Scenario: A team with a quota of zero gets nothing
    Given the results for "2026-Q1":
      | employee | quota | revenue_new |
      | E1       | 0     | 50000       |
      | E2       | 0     | 50000       |
    When the compensation run for "2026-Q1" is made
    Then nobody has a "bonus.team_travel_fund" outcome

  Scenario: A member without a quota adds revenue but no target, and is still a member
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 90000       |
      | E2       |        | 10000       |
    When the compensation run for "2026-Q1" is made
    # team: 100000 revenue over 100000 quota
    Then only "E1, E2" receive a "bonus.team_travel_fund" bonus of 500.00 payable

  Scenario: Each team is judged on its own figures
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 50000       |
      | E2       | 100000 | 50000       |
      | E3       | 100000 | 250000      |
    When the compensation run for "2026-Q1" is made
    Then only "E3" receive a "bonus.team_travel_fund" bonus of 500.00 payable

  Scenario: A colleague without results this quarter is not a member
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 100000      |
    When the compensation run for "2026-Q1" is made
    Then only "E1" receive a "bonus.team_travel_fund" bonus of 500.00 payable
