Feature: Performance improvement plan (pip.trigger)
  A salesperson starts a performance improvement plan (PIP) when they are rated D in a
  quarter, or rated C or D in both this quarter and the previous one, unless a PIP of
  theirs already runs during this quarter. The PIP starts on the first day of the next
  quarter and lasts three months, with the target "monthly attainment >= 0.80".
  (B: attainment at least 90% and evaluation score at least 60; C: attainment at least 70%;
  D: below 70%. Evaluation score 85 below means self, manager and customer scores of 85.)

  Background:
    Given employee "E1" at level "S1" in team "North"

  Scenario: Rated D starts a PIP on the first day of the next quarter
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 50000       | 85         | 85            | 85             |
    When the compensation run for "2026-Q1" is made
    Then "E1" is rated "D"
    And "E1" gets the pip "pip.trigger" valued "2026-04-01"

  Scenario: Rated D without any evaluation score starts a PIP
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 50000       |
    When the compensation run for "2026-Q1" is made
    Then "E1" is rated "D"
    And "E1" gets the pip "pip.trigger" valued "2026-04-01"

  Scenario: Rated D in the last quarter of the year starts a PIP in January
    Given the results for "2025-Q4":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 0           | 85         | 85            | 85             |
    When the compensation run for "2025-Q4" is made
    Then "E1" gets the pip "pip.trigger" valued "2026-01-01"

  Scenario: Rated C once starts no PIP
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 70000       | 85         | 85            | 85             |
    When the compensation run for "2026-Q1" is made
    Then "E1" is rated "C"
    And "E1" has no "pip.trigger" outcome

  Scenario: Rated C two quarters running starts a PIP
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 75000       | 85         | 85            | 85             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 80000       | 85         | 85            | 85             |
    When the compensation run for "2026-Q2" is made
    Then "E1" is rated "C"
    And "E1" gets the pip "pip.trigger" valued "2026-07-01"

  Scenario: Rated C then B starts no PIP
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 75000       | 85         | 85            | 85             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 95000       | 85         | 85            | 85             |
    When the compensation run for "2026-Q2" is made
    Then "E1" is rated "B"
    And "E1" has no "pip.trigger" outcome

  Scenario: Rated B starts no PIP
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 95000       | 85         | 85            | 85             |
    When the compensation run for "2026-Q1" is made
    Then "E1" is rated "B"
    And "E1" has no "pip.trigger" outcome

  Scenario: A PIP running through the quarter prevents a second one
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 50000       | 85         | 85            | 85             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 40000       | 85         | 85            | 85             |
    When the compensation run for "2026-Q2" is made
    # the PIP started by 2026-Q1 runs from 2026-04-01 to 2026-06-30
    Then "E1" is rated "D"
    And "E1" has no "pip.trigger" outcome

  Scenario: Once the PIP has ended, a new D starts a new PIP
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 50000       | 85         | 85            | 85             |
    And the compensation run for "2026-Q1" was made
    And the results for "2026-Q2":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 40000       | 85         | 85            | 85             |
    And the compensation run for "2026-Q2" was made
    And the results for "2026-Q3":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 30000       | 85         | 85            | 85             |
    When the compensation run for "2026-Q3" is made
    # the first PIP ended on 2026-06-30, before 2026-Q3 began
    Then "E1" gets the pip "pip.trigger" valued "2026-10-01"

  Scenario: Rerunning the quarter that started the PIP does not count it twice
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 50000       | 85         | 85            | 85             |
    And the compensation run for "2026-Q1" was made
    When the compensation run for "2026-Q1" is made
    Then "E1" gets the pip "pip.trigger" valued "2026-04-01"

  Scenario: Without an attainment there is no rating and no PIP
    Given the results for "2026-Q1":
      | employee | quota | revenue_new |
      | E1       |       | 10000       |
    When the compensation run for "2026-Q1" is made
    Then "E1" is not rated
    And "E1" has no "pip.trigger" outcome
