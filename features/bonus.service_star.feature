Feature: Service Star (bonus.service_star)
  Each quarter the top 10% in customer satisfaction earn 2000.00. Exactly: a salesperson
  with a satisfaction figure qualifies when fewer than 10% of all the salespeople with a
  satisfaction figure that quarter have a strictly higher satisfaction.
  Those tied share the same count of people above them, so they qualify or miss together.
  A salesperson without a satisfaction figure neither qualifies nor counts.

  Background:
    Given employees "S01" to "S20" at level "S1" in team "North"

  Scenario: Twenty distinct scores: the top two are stars
    Given the results for "2026-Q1":
      | employee | satisfaction |
      | S01      | 100          |
      | S02      | 99           |
      | S03      | 98           |
      | S04      | 97           |
      | S05      | 96           |
      | S06      | 95           |
      | S07      | 94           |
      | S08      | 93           |
      | S09      | 92           |
      | S10      | 91           |
      | S11      | 90           |
      | S12      | 89           |
      | S13      | 88           |
      | S14      | 87           |
      | S15      | 86           |
      | S16      | 85           |
      | S17      | 84           |
      | S18      | 83           |
      | S19      | 82           |
      | S20      | 81           |
    When the compensation run for "2026-Q1" is made
    # S02 has 1 of 20 (5%) above; S03 has 2 of 20 (10%), which is not fewer than 10%
    Then only "S01, S02" receive a "bonus.service_star" bonus of 2000.00 payable

  Scenario: A tie just below the top: all tied qualify
    Given the results for "2026-Q1":
      | employee | satisfaction |
      | S01      | 100          |
      | S02      | 99           |
      | S03      | 99           |
      | S04      | 99           |
      | S05      | 96           |
      | S06      | 95           |
      | S07      | 94           |
      | S08      | 93           |
      | S09      | 92           |
      | S10      | 91           |
      | S11      | 90           |
      | S12      | 89           |
      | S13      | 88           |
      | S14      | 87           |
      | S15      | 86           |
      | S16      | 85           |
      | S17      | 84           |
      | S18      | 83           |
      | S19      | 82           |
      | S20      | 81           |
    When the compensation run for "2026-Q1" is made
    # S02, S03 and S04 each have only S01 above them: 1 of 20 (5%)
    Then only "S01, S02, S03, S04" receive a "bonus.service_star" bonus of 2000.00 payable

  Scenario: A tie at the top pushes the next one out
    Given the results for "2026-Q1":
      | employee | satisfaction |
      | S01      | 100          |
      | S02      | 100          |
      | S03      | 99           |
      | S04      | 97           |
      | S05      | 96           |
      | S06      | 95           |
      | S07      | 94           |
      | S08      | 93           |
      | S09      | 92           |
      | S10      | 91           |
      | S11      | 90           |
      | S12      | 89           |
      | S13      | 88           |
      | S14      | 87           |
      | S15      | 86           |
      | S16      | 85           |
      | S17      | 84           |
      | S18      | 83           |
      | S19      | 82           |
      | S20      | 81           |
    When the compensation run for "2026-Q1" is made
    # S03 is second-best by score, but 2 of 20 (10%) are strictly above: not fewer than 10%
    Then only "S01, S02" receive a "bonus.service_star" bonus of 2000.00 payable

  Scenario: With ten scores, only those with nobody above qualify
    Given the results for "2026-Q1":
      | employee | satisfaction |
      | S01      | 95           |
      | S02      | 100          |
      | S03      | 90           |
      | S04      | 90           |
      | S05      | 80           |
      | S06      | 80           |
      | S07      | 70           |
      | S08      | 70           |
      | S09      | 60           |
      | S10      | 60           |
    When the compensation run for "2026-Q1" is made
    # S01 has 1 of 10 (10%) above
    Then only "S02" receive a "bonus.service_star" bonus of 2000.00 payable

  Scenario: With twenty-one scores, one more than 20, two above is under 10%
    Given employee "S21" at level "S1" in team "North"
    And the results for "2026-Q1":
      | employee | satisfaction |
      | S01      | 100          |
      | S02      | 99           |
      | S03      | 98           |
      | S04      | 97           |
      | S05      | 96           |
      | S06      | 95           |
      | S07      | 94           |
      | S08      | 93           |
      | S09      | 92           |
      | S10      | 91           |
      | S11      | 90           |
      | S12      | 89           |
      | S13      | 88           |
      | S14      | 87           |
      | S15      | 86           |
      | S16      | 85           |
      | S17      | 84           |
      | S18      | 83           |
      | S19      | 82           |
      | S20      | 81           |
      | S21      | 80           |
    When the compensation run for "2026-Q1" is made
    # S03 has 2 of 21 (9.5%) above; S04 has 3 of 21 (14.3%)
    Then only "S01, S02, S03" receive a "bonus.service_star" bonus of 2000.00 payable

  Scenario: A salesperson without a satisfaction figure is not counted
    Given the results for "2026-Q1":
      | employee | satisfaction | visits |
      | S01      | 100          | 12     |
      | S02      | 90           | 12     |
      | S03      | 80           | 12     |
      | S04      | 70           | 12     |
      | S05      | 60           | 12     |
      | S06      | 50           | 12     |
      | S07      | 40           | 12     |
      | S08      | 30           | 12     |
      | S09      | 20           | 12     |
      | S10      | 10           | 12     |
      | S11      |              | 12     |
      | S12      |              | 12     |
      | S13      |              | 12     |
      | S14      |              | 12     |
      | S15      |              | 12     |
      | S16      |              | 12     |
      | S17      |              | 12     |
      | S18      |              | 12     |
      | S19      |              | 12     |
      | S20      |              | 12     |
    When the compensation run for "2026-Q1" is made
    # N is 10, not 20: S02 has 1 of 10 (10%) above, so only S01 qualifies
    Then only "S01" receive a "bonus.service_star" bonus of 2000.00 payable
    And "S11" has no "bonus.service_star" outcome

  Scenario: A lone salesperson with a satisfaction figure is the star
    Given the results for "2026-Q1":
      | employee | satisfaction | quota  |
      | S01      | 40           | 100000 |
      | S02      |              | 100000 |
    When the compensation run for "2026-Q1" is made
    Then only "S01" receive a "bonus.service_star" bonus of 2000.00 payable

  Scenario: The quarter's satisfaction is the mean of the months that have one
    Given the results:
      | period  | employee | satisfaction |
      | 2026-01 | S01      | 90           |
      | 2026-02 | S01      |              |
      | 2026-03 | S01      | 70           |
      | 2026-01 | S02      | 81           |
      | 2026-02 | S02      | 81           |
      | 2026-03 | S02      | 81           |
    When the compensation run for "2026-Q1" is made
    # S01 averages 80 over its two months, below S02's 81: 1 of 2 (50%) is above S01
    Then only "S02" receive a "bonus.service_star" bonus of 2000.00 payable
