Feature: Quarterly rating (rating.quarterly)
  Each quarter every salesperson is rated by the first row that matches:
    A: attainment at least 110% and evaluation score at least 80
    B: attainment at least 90% and evaluation score at least 60
    C: attainment at least 70%
    D: any other attainment
  The evaluation score is 20% self-assessment, 50% manager assessment and 30% customer
  assessment; it is undefined when any of the three is missing. Without an attainment
  there is no rating, and HR gets a warning.
  The quarter's figures are those imported for the quarter; what is not imported there is
  built from the months (amounts summed, scores averaged over the months that have them).

  Background:
    Given employee "E1" at level "S2" in team "North"

  Scenario Outline: The first matching row gives the rating
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | <revenue>   | <self>     | <manager>     | <customer>     |
    When the compensation run for "2026-Q1" is made
    Then "E1" is rated "<rating>"

    Examples:
      | case                                               | revenue | self | manager | customer | rating |
      | exactly 110% and a score of exactly 80             | 110000  | 80   | 80      | 80       | A      |
      | well above on both                                 | 150000  | 95   | 90      | 100      | A      |
      | exactly 110% with a score of 79.99                 | 110000  | 80   | 79.98   | 80       | B      |
      | a hair under 110% with a high score                | 109990  | 95   | 95      | 95       | B      |
      | exactly 90% and a score of exactly 60              | 90000   | 60   | 60      | 60       | B      |
      | exactly 90% with a score of 59.99                  | 90000   | 60   | 59.98   | 60       | C      |
      | a hair under 90% with a high score                 | 89990   | 95   | 95      | 95       | C      |
      | exactly 70% with a low score                       | 70000   | 10   | 10      | 10       | C      |
      | a hair under 70% with a top score                  | 69990   | 100  | 100     | 100      | D      |
      | no revenue                                         | 0       | 90   | 90      | 90       | D      |
      | the manager weighs most: 12 + 45 + 24 = 81         | 120000  | 60   | 90      | 80       | A      |
      | the self-assessment weighs least: 20 + 35 + 24 = 79 | 120000 | 100  | 70      | 80       | B      |

  Scenario Outline: Without an evaluation score only attainment decides, between C and D
    Given the results for "2026-Q1":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | <revenue>   | 100        | 100           |                |
    When the compensation run for "2026-Q1" is made
    Then "E1" is rated "<rating>"

    Examples:
      | revenue | rating |
      | 150000  | C      |
      | 70000   | C      |
      | 50000   | D      |

  Scenario: Without an attainment there is no rating, and a warning
    Given the results for "2026-Q1":
      | employee | quota | revenue_new | self_score | manager_score | customer_score |
      | E1       |       | 150000      | 95         | 95            | 95             |
    When the compensation run for "2026-Q1" is made
    Then "E1" is not rated
    And "E1" gets a warning from "rating.quarterly" naming "attainment"

  Scenario: A quota of zero gives no rating, and a warning
    Given the results for "2026-Q1":
      | employee | quota | revenue_new | self_score | manager_score | customer_score |
      | E1       | 0     | 150000      | 95         | 95            | 95             |
    When the compensation run for "2026-Q1" is made
    Then "E1" is not rated
    And "E1" gets a warning from "rating.quarterly" naming "attainment"

  Scenario: The quarter is built from its months
    Given the results:
      | period  | employee | quota | revenue_new | revenue_existing | self_score | manager_score | customer_score |
      | 2026-01 | E1       | 40000 | 40000       | 4000             | 80         | 90            | 70             |
      | 2026-02 | E1       | 40000 | 44000       |                  | 80         |               | 80             |
      | 2026-03 | E1       | 40000 | 34000       | 10000            | 80         | 70            | 90             |
    When the compensation run for "2026-Q1" is made
    # attainment 132000 / 120000 = 1.10; manager 80 (the mean of the two months that have it),
    # customer 80, self 80: evaluation score 80
    Then "E1" is rated "A"

  Scenario: A score imported for the quarter wins over the months
    Given the results:
      | period  | employee | quota | revenue_new | self_score | manager_score | customer_score |
      | 2026-01 | E1       | 40000 | 44000       | 80         | 80            | 80             |
      | 2026-02 | E1       | 40000 | 44000       | 80         | 80            | 80             |
      | 2026-03 | E1       | 40000 | 44000       | 80         | 80            | 80             |
      | 2026-Q1 | E1       |       |             |            | 50            |                |
    When the compensation run for "2026-Q1" is made
    # attainment 1.10 from the months; evaluation 16 + 25 + 24 = 65 with the quarter's manager score
    Then "E1" is rated "B"

  Scenario: Revenue imported for the quarter wins over the months
    Given the results:
      | period  | employee | quota | revenue_new | self_score | manager_score | customer_score |
      | 2026-01 | E1       | 40000 | 44000       | 80         | 80            | 80             |
      | 2026-02 | E1       | 40000 | 44000       | 80         | 80            | 80             |
      | 2026-03 | E1       | 40000 | 44000       | 80         | 80            | 80             |
      | 2026-Q1 | E1       |       | 60000       |            |               |                |
    When the compensation run for "2026-Q1" is made
    # attainment 60000 / 120000 = 0.50
    Then "E1" is rated "D"

  Scenario: A monthly run gives no quarterly rating
    Given the results for "2026-01":
      | employee | quota  | revenue_new | self_score | manager_score | customer_score |
      | E1       | 100000 | 150000      | 95         | 95            | 95             |
    When the compensation run for "2026-01" is made
    Then "E1" is not rated
