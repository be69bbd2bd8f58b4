Feature: Dated assignments and proration (effective_date, leave_date, action.prorate)
  An employee's team, level and manager hold from an effective date until the next one;
  the employee is paid up to their leave date. A run uses the assignment in force on each
  day: a team counts a member for the share of the period they belonged to it, with that
  share of their revenue and quota, so a transfer splits the period between the two teams;
  the employee's own team is the one of their last day in the period. active_days,
  period_days and active_share say how much of the period the employee was employed, and
  an amount rule with prorate: true pays that share of its amount (rounded once). An
  employee who left before the period, or joins after it, is out of it.

  Background:
    Given employee "E1" at level "S2" in team "North"
    And employee "E2" at level "S2" in team "North"

  Scenario: A mid-month hire is paid for the days employed
    Given the rule "commission.new_logo" changed:
      | field          | value |
      | action.prorate | true  |
    And the dated assignments:
      | employee | team  | level | effective_date |
      | E3       | North | S1    | 2026-01-16     |
    And the results for "2026-01":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 31000       |
      | E3       | 100000 | 31000       |
    When the compensation run for "2026-01" is made
    # 1% of 31,000 = 310.00; E3 was employed 16 of the 31 days: 310 x 16/31 = 160.00
    Then "E1" receives a "commission.new_logo" commission of 310.00 payable
    And "E3" receives a "commission.new_logo" commission of 160.00 payable

  Scenario: Without prorate the hire is paid the whole amount
    Given the dated assignments:
      | employee | team  | level | effective_date |
      | E3       | North | S1    | 2026-01-16     |
    And the results for "2026-01":
      | employee | quota  | revenue_new |
      | E3       | 100000 | 31000       |
    When the compensation run for "2026-01" is made
    Then "E3" receives a "commission.new_logo" commission of 310.00 payable

  Scenario: A transfer splits the quarter between the two teams
    # 2026-Q1 has 90 days: E2 is in North from January 1 to February 14 (45 days), then in
    # South (45 days). North: 90,000 + half of 120,000 over 100,000 + half of 100,000 =
    # 150,000 / 150,000 = 100%. South: 80,000 + 60,000 over 150,000 = 93.3%.
    Given the dated assignments:
      | employee | team  | level | effective_date |
      | E3       | South | S1    |                |
      | E2       | South | S2    | 2026-02-15     |
    And the results for "2026-Q1":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 90000       |
      | E2       | 100000 | 120000      |
      | E3       | 100000 | 80000       |
    When the compensation run for "2026-Q1" is made
    Then only "E1" receive a "bonus.team_travel_fund" bonus of 500.00 payable

  Scenario: A leaver is paid for the days employed in the month they leave
    Given the rule "commission.new_logo" changed:
      | field          | value |
      | action.prorate | true  |
    And the dated assignments:
      | employee | team  | level | leave_date |
      | E2       | North | S2    | 2026-01-10 |
    And the results for "2026-01":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 31000       |
      | E2       | 100000 | 31000       |
    When the compensation run for "2026-01" is made
    # 310.00 x 10/31 = 100.00
    Then "E1" receives a "commission.new_logo" commission of 310.00 payable
    And "E2" receives a "commission.new_logo" commission of 100.00 payable

  Scenario: A leaver is out of the periods after they left, even with results
    Given the dated assignments:
      | employee | team  | level | leave_date |
      | E2       | North | S2    | 2026-01-10 |
    And the results for "2026-02":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 28000       |
      | E2       | 100000 | 28000       |
    When the compensation run for "2026-02" is made
    Then "E1" receives a "commission.new_logo" commission of 280.00 payable
    And "E2" has no "commission.new_logo" outcome
