Feature: Collection gap (compliance.collection_gap)
  A salesperson who signed at least 50,000 in the month but collected less than half of it
  in cash is flagged "medium": possible false prosperity, signed far ahead of cash.
  This flag is a warning sign only: it holds nothing.

  Background:
    Given employee "E1" at level "S1" in team "North"

  Scenario: Signed 50,000 and collected a cent short of half is flagged, payouts stay payable
    Given the results for "2026-01":
      | employee | quota  | revenue_new | signed_amount | collected_amount |
      | E1       | 100000 | 100000      | 50000         | 24999.99         |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.collection_gap" valued "medium"
    And "E1" receives a "commission.tiered" commission of 5000.00 payable
    And "E1" receives a "commission.new_logo" commission of 1000.00 payable

  Scenario: Nothing collected on a large signing is flagged
    Given the results for "2026-01":
      | employee | signed_amount | collected_amount |
      | E1       | 200000        | 0                |
    When the compensation run for "2026-01" is made
    Then "E1" gets the flag "compliance.collection_gap" valued "medium"

  Scenario Outline: No flag
    Given the results for "2026-01":
      | employee | quota  | revenue_new | signed_amount | collected_amount |
      | E1       | 100000 | 100000      | <signed>      | <collected>      |
    When the compensation run for "2026-01" is made
    Then "E1" has no "compliance.collection_gap" outcome
    And "E1" receives a "commission.tiered" commission of 5000.00 payable

    Examples:
      | case                                       | signed   | collected |
      | signed a cent under 50,000, nothing cashed | 49999.99 | 0         |
      | exactly half collected                     | 50000    | 25000     |
      | more than half collected                   | 80000    | 60000     |
      | nothing signed                             | 0        | 0         |
      | collections not reported                   | 60000    |           |
      | signings not reported                      |          | 1000      |
