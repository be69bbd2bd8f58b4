Feature: Reserve supervisor program (eligibility.reserve_supervisor)
  A salesperson rated A this quarter who was also rated A in the previous quarter becomes
  eligible for the reserve supervisor program. The previous quarter's rating is the one of
  its latest compensation run that was not discarded.
  (A: attainment at least 110% and evaluation score at least 80; B: attainment at least 90%
  and evaluation score at least 60.)

  Background:
    Given employee "E1" at level "S3" in team "North"

  Scenario: Rated A two quarters running
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 110000      | 80         | 80            | 80             |
    When the compensation run for "2026-Q2" is made
    Then "E1" is rated "A"
    And "E1" gets the eligibility "eligibility.reserve_supervisor" valued "Reserve Supervisor Program"

  Scenario: Rated A across the turn of the year
    Given the results for "2025-Q4":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    And the compensation run for "2025-Q4" was made
    And the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    When the compensation run for "2026-Q1" is made
    Then "E1" gets the eligibility "eligibility.reserve_supervisor" valued "Reserve Supervisor Program"

  Scenario: A then B is not eligible
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 100000      | 90         | 90            | 90             |
    When the compensation run for "2026-Q2" is made
    Then "E1" is rated "B"
    And "E1" has no "eligibility.reserve_supervisor" outcome

  Scenario: B then A is not eligible
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 100000      | 90         | 90            | 90             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    When the compensation run for "2026-Q2" is made
    Then "E1" is rated "A"
    And "E1" has no "eligibility.reserve_supervisor" outcome

  Scenario: A in the first quarter ever run is not eligible
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    When the compensation run for "2026-Q1" is made
    Then "E1" is rated "A"
    And "E1" has no "eligibility.reserve_supervisor" outcome

  Scenario: A two quarters back does not count when the quarter between was not run
    Given the results for "2025-Q4":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    And the compensation run for "2025-Q4" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    When the compensation run for "2026-Q2" is made
    Then "E1" is rated "A"
    And "E1" has no "eligibility.reserve_supervisor" outcome

  Scenario: The previous quarter counts as its latest run rated it
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 100000      | 90         | 90            | 90             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 120000      | 90         | 90            | 90             |
    When the compensation run for "2026-Q2" is made
    # the first 2026-Q1 run (A) was discarded by the second (B)
    Then "E1" is rated "A"
    And "E1" has no "eligibility.reserve_supervisor" outcome
