Feature: Monthly champion (award.monthly_champion)
  The salesperson with the highest total revenue in the whole company for the month has
  lunch with the CEO. If several share the highest total, all of them go. Nobody goes when
  the highest total is zero. The award carries no money.

  Background:
    Given employee "E1" at level "S1" in team "North"
    And employee "E2" at level "S2" in team "North"
    And employee "E3" at level "S3" in team "South"

  Scenario: The single highest revenue wins, across teams
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 90000       | 0                |
      | E2       | 100000 | 60000       | 40000.01         |
      | E3       | 200000 | 100000      |                  |
    When the compensation run for "2026-01" is made
    Then only "E2" get the award "award.monthly_champion" valued "CEO lunch"

  Scenario: A tie at the top sends everyone tied to lunch
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 120000      | 0                |
      | E2       | 100000 | 70000       | 50000            |
      | E3       | 100000 | 50000       | 0                |
    When the compensation run for "2026-01" is made
    Then only "E1, E2" get the award "award.monthly_champion" valued "CEO lunch"

  Scenario: Nobody wins when the highest revenue is zero
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 0           | 0                |
      | E2       | 100000 | 0           |                  |
      | E3       | 100000 |             |                  |
    When the compensation run for "2026-01" is made
    Then nobody has a "award.monthly_champion" outcome

  Scenario: A salesperson without revenue figures does not stop the champion from winning
    Given the results for "2026-01":
      | employee | quota  | revenue_new | revenue_existing |
      | E1       | 100000 | 10          |                  |
      | E2       | 100000 |             |                  |
      | E3       | 100000 | 0           | 0                |
    When the compensation run for "2026-01" is made
    Then only "E1" get the award "award.monthly_champion" valued "CEO lunch"
