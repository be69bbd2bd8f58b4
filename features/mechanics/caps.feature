Feature: Caps and floors (action.cap, action.floor, action.annual_cap)
  Any amount rule can have a floor and a cap per period, and an annual cap per employee
  across the periods of the same rule in a calendar year. The floor applies first, then
  the cap, then the annual cap: what is left of it once the amounts the rule paid the
  employee in the approved or locked runs of the earlier periods of the year are taken off
  (payable and held lines count, forfeited ones do not), never below 0.
  Here the new-logo commission (1% of revenue from new customers) gets the limits.

  Background:
    Given employee "E1" at level "S2" in team "North"

  Scenario Outline: A floor and a cap per period, hit and not hit
    Given the rule "commission.new_logo" changed:
      | field        | value |
      | action.floor | 50    |
      | action.cap   | 500   |
    And the results for "2026-01":
      | employee | quota  | revenue_new |
      | E1       | 100000 | <new>       |
    When the compensation run for "2026-01" is made
    Then "E1" receives a "commission.new_logo" commission of <commission> payable

    Examples:
      | case                        | new    | commission |
      | below the floor             | 2000   | 50.00      |
      | exactly the floor           | 5000   | 50.00      |
      | between floor and cap       | 40000  | 400.00     |
      | exactly the cap             | 50000  | 500.00     |
      | a cent above the cap        | 50001  | 500.00     |
      | far above the cap           | 120000 | 500.00     |

  Scenario: A floor pays nothing where the rule does not apply
    Given the rule "commission.new_logo" changed:
      | field        | value |
      | action.floor | 50    |
    And the results for "2026-01":
      | employee | quota  | revenue_new |
      | E1       | 100000 | 0           |
    When the compensation run for "2026-01" is made
    Then "E1" receives no "commission.new_logo" commission

  Scenario: The annual cap takes off what the approved and locked runs of the year paid
    Given the rule "commission.new_logo" changed:
      | field             | value |
      | action.annual_cap | 1000  |
    And the results:
      | period  | employee | quota  | revenue_new |
      | 2026-01 | E1       | 100000 | 60000       |
      | 2026-02 | E1       | 100000 | 30000       |
      | 2026-03 | E1       | 100000 | 50000       |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and locked
    When the compensation run for "2026-03" is made
    # 600.00 and 300.00 paid: 100.00 of the 1000.00 is left
    Then "E1" receives a "commission.new_logo" commission of 100.00 payable

  Scenario: The annual cap is not hit while the year's total stays below it
    Given the rule "commission.new_logo" changed:
      | field             | value |
      | action.annual_cap | 1000  |
    And the results:
      | period  | employee | quota  | revenue_new |
      | 2026-01 | E1       | 100000 | 30000       |
      | 2026-02 | E1       | 100000 | 40000       |
    And the compensation run for "2026-01" was made and approved
    When the compensation run for "2026-02" is made
    Then "E1" receives a "commission.new_logo" commission of 400.00 payable

  Scenario: A re-run of the period counts nothing twice
    Given the rule "commission.new_logo" changed:
      | field             | value |
      | action.annual_cap | 1000  |
    And the results:
      | period  | employee | quota  | revenue_new |
      | 2026-01 | E1       | 100000 | 80000       |
      | 2026-02 | E1       | 100000 | 50000       |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    When the compensation run for "2026-02" is made
    # February's own approved run never counts for February: 1000.00 - 800.00
    Then "E1" receives a "commission.new_logo" commission of 200.00 payable

  Scenario: A run that is only calculated does not count
    Given the rule "commission.new_logo" changed:
      | field             | value |
      | action.annual_cap | 1000  |
    And the results:
      | period  | employee | quota  | revenue_new |
      | 2026-01 | E1       | 100000 | 80000       |
      | 2026-02 | E1       | 100000 | 50000       |
    And the compensation run for "2026-01" was made
    When the compensation run for "2026-02" is made
    Then "E1" receives a "commission.new_logo" commission of 500.00 payable

  Scenario: Once the annual cap is reached the rule pays 0.00
    Given the rule "commission.new_logo" changed:
      | field             | value |
      | action.annual_cap | 1000  |
    And the results:
      | period  | employee | quota  | revenue_new |
      | 2026-01 | E1       | 100000 | 80000       |
      | 2026-02 | E1       | 100000 | 70000       |
      | 2026-03 | E1       | 100000 | 10000       |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    When the compensation run for "2026-03" is made
    # 800.00, then 200.00 of February's 700.00: nothing is left
    Then "E1" receives a "commission.new_logo" commission of 0.00 payable

  Scenario: A new year starts afresh
    Given the rule "commission.new_logo" changed:
      | field             | value |
      | action.annual_cap | 1000  |
    And the results:
      | period  | employee | quota  | revenue_new |
      | 2026-12 | E1       | 100000 | 120000      |
      | 2027-01 | E1       | 100000 | 50000       |
    And the compensation run for "2026-12" was made and approved
    When the compensation run for "2027-01" is made
    Then "E1" receives a "commission.new_logo" commission of 500.00 payable
