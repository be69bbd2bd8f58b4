Feature: Annual rating (rating.annual)
  Each year every salesperson gets an annual score: 80% of their evaluation score plus 20%
  of their customers' renewal intent. (The evaluation score is 20% self-assessment, 50%
  manager assessment and 30% customer assessment.) The first row that matches rates them:
    A: annual score at least 85 and attainment at least 100%
    B: annual score at least 70
    C: annual score at least 55
    D: any other annual score
  The year's figures are those imported for the year; what is missing there is built from
  the quarters (amounts summed, scores averaged).

  Background:
    Given employee "E1" at level "M1" in team "North"

  Scenario Outline: The first matching row gives the rating
    Given the results for "2026":
      | employee | quota   | revenue_new | self_score | manager_score | customer_score | renewal_intent |
      | E1       | 1000000 | <revenue>   | <score>    | <score>       | <score>        | <renewal>      |
    When the compensation run for "2026" is made
    Then "E1" is rated "<rating>"

    Examples:
      | case                                             | revenue | score | renewal | rating |
      | 85 exactly and exactly 100%                      | 1000000 | 85    | 85      | A      |
      | 72 + 13 = 85 with attainment above               | 1500000 | 90    | 65      | A      |
      | 85 but a hair under 100%                         | 999900  | 85    | 85      | B      |
      | 68 + 16.99 = 84.99 with attainment above         | 1500000 | 85    | 84.95   | B      |
      | 64 + 20 = 84: renewal cannot make up the score   | 1500000 | 80    | 100     | B      |
      | 70 exactly                                       | 500000  | 70    | 70      | B      |
      | 56 + 13.99 = 69.99                               | 1500000 | 70    | 69.95   | C      |
      | 55 exactly                                       | 0       | 55    | 55      | C      |
      | 44 + 10.99 = 54.99                               | 1500000 | 55    | 54.95   | D      |
      | 0                                                | 1500000 | 0     | 0       | D      |

  Scenario: The evaluation score is weighted 20 / 50 / 30
    Given the results for "2026":
      | employee | quota   | revenue_new | self_score | manager_score | customer_score | renewal_intent |
      | E1       | 1000000 | 1000000     | 50         | 100           | 90             | 60             |
    When the compensation run for "2026" is made
    # evaluation 10 + 50 + 27 = 87; annual 69.6 + 12 = 81.6
    Then "E1" is rated "B"

  Scenario: A top score without an attainment cannot be A
    Given the results for "2026":
      | employee | quota | revenue_new | self_score | manager_score | customer_score | renewal_intent |
      | E1       |       | 2000000     | 95         | 95            | 95             | 95             |
    When the compensation run for "2026" is made
    Then "E1" is rated "B"

  Scenario Outline: Without an annual score there is no annual rating
    Given the results for "2026":
      | employee | quota   | revenue_new | self_score | manager_score | customer_score | renewal_intent |
      | E1       | 1000000 | 2000000     | 95         | <manager>     | 95             | <renewal>      |
    When the compensation run for "2026" is made
    Then "E1" is not rated

    Examples:
      | case                      | manager | renewal |
      | no renewal intent         | 95      |         |
      | no manager assessment     |         | 95      |

  Scenario: The year is built from its quarters
    Given the results:
      | period  | employee | quota  | revenue_new | self_score | manager_score | customer_score | renewal_intent |
      | 2026-Q1 | E1       | 250000 | 260000      | 90         | 80            | 90             | 80             |
      | 2026-Q2 | E1       | 250000 | 260000      | 90         | 90            | 90             | 70             |
      | 2026-Q3 | E1       | 250000 | 260000      | 90         | 100           | 90             |                |
      | 2026-Q4 | E1       | 250000 | 260000      | 90         | 90            | 90             | 90             |
    When the compensation run for "2026" is made
    # attainment 1040000 / 1000000 = 1.04; manager 90 on average, so evaluation 90;
    # renewal intent 80 (the three quarters that have it); annual 72 + 16 = 88
    Then "E1" is rated "A"

  Scenario: A score imported for the year wins over the quarters
    Given the results:
      | period  | employee | quota  | revenue_new | self_score | manager_score | customer_score | renewal_intent |
      | 2026-Q1 | E1       | 250000 | 260000      | 90         | 90            | 90             | 90             |
      | 2026-Q2 | E1       | 250000 | 260000      | 90         | 90            | 90             | 90             |
      | 2026-Q3 | E1       | 250000 | 260000      | 90         | 90            | 90             | 90             |
      | 2026-Q4 | E1       | 250000 | 260000      | 90         | 90            | 90             | 90             |
      | 2026    | E1       |        |             |            |               |                | 20             |
    When the compensation run for "2026" is made
    # annual 72 + 4 = 76
    Then "E1" is rated "B"

  Scenario: A quarter's run gives no annual rating
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score | renewal_intent |
      | E1       | 100000 | 50000       | 90         | 90            | 90             | 90             |
    When the compensation run for "2026-Q1" is made
    Then "E1" has no "rating.annual" outcome
