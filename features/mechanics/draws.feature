Feature: Draws (action type draw)
  A draw guarantees an amount a period for a number of periods, from the period holding
  the rule's effective_from: where the employee's other commissions of the period come to
  less, the draw pays the shortfall. A recoverable draw keeps what it paid as a balance
  owed and takes it back from later commissions, up to the share the rule sets (during
  the draw, of what is earned above the guarantee; after it, of all of it), never more
  than the balance. The balance is what the draw's lines came to in the approved or
  locked runs of the earlier periods, so a re-run recovers nothing twice.
  Here the new-logo commission is made a draw of 3,000.00 a month for three months from
  January; the tiered commission (3% of revenue below 80% of quota, 5% from 100%) is what
  the employee earns.

  Background:
    Given employee "E1" at level "S2" in team "North"
    And the results:
      | period  | employee | quota  | revenue_new |
      | 2026-01 | E1       | 100000 | 50000       |
      | 2026-02 | E1       | 100000 | 40000       |
      | 2026-03 | E1       | 100000 | 100000      |
      | 2026-04 | E1       | 100000 | 100000      |

  Scenario: A recoverable draw over three months, recovered in the third and after
    Given the rule "commission.new_logo" changed:
      | field                 | value      |
      | effective_from        | 2026-01-01 |
      | when                  |            |
      | action.type           | draw       |
      | action.rate           |            |
      | action.base           |            |
      | action.amount         | 3000       |
      | action.periods        | 3          |
      | action.recoverable    | true       |
      | action.recovery_share | 0.5        |
    # January: 3% of 50,000 = 1,500.00 earned, 1,500.00 drawn; February: 1,200.00 earned,
    # 1,800.00 drawn: 3,300.00 owed
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and locked
    When the compensation run for "2026-03" is made
    # 5% of 100,000 = 5,000.00: half of the 2,000.00 above the guarantee is recovered
    Then "E1" receives a "commission.new_logo" commission of -1000.00 payable
    And "E1" owes a "commission.new_logo" draw balance of 2300.00

  Scenario: After the draw, half of the commissions recover what is left, and no more
    Given the rule "commission.new_logo" changed:
      | field                 | value      |
      | effective_from        | 2026-01-01 |
      | when                  |            |
      | action.type           | draw       |
      | action.rate           |            |
      | action.base           |            |
      | action.amount         | 3000       |
      | action.periods        | 3          |
      | action.recoverable    | true       |
      | action.recovery_share | 0.5        |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    And the compensation run for "2026-03" was made and approved
    When the compensation run for "2026-04" is made
    # half of 5,000.00 is 2,500.00, but only 2,300.00 is owed
    Then "E1" receives a "commission.new_logo" commission of -2300.00 payable
    And "E1" owes a "commission.new_logo" draw balance of 0.00

  Scenario: A re-run of a month recovers nothing twice
    Given the rule "commission.new_logo" changed:
      | field                 | value      |
      | effective_from        | 2026-01-01 |
      | when                  |            |
      | action.type           | draw       |
      | action.rate           |            |
      | action.base           |            |
      | action.amount         | 3000       |
      | action.periods        | 3          |
      | action.recoverable    | true       |
      | action.recovery_share | 0.5        |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    And the compensation run for "2026-03" was made and approved
    When the compensation run for "2026-03" is made
    Then "E1" receives a "commission.new_logo" commission of -1000.00 payable
    And "E1" owes a "commission.new_logo" draw balance of 2300.00

  Scenario: A draw that is not recoverable tops up and is never taken back
    Given the rule "commission.new_logo" changed:
      | field          | value      |
      | effective_from | 2026-01-01 |
      | when           |            |
      | action.type    | draw       |
      | action.rate    |            |
      | action.base    |            |
      | action.amount  | 3000       |
      | action.periods | 3          |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    And the compensation run for "2026-03" was made and approved
    When the compensation run for "2026-04" is made
    Then "E1" receives no "commission.new_logo" commission

  Scenario: Within the draw a month below the guarantee is topped up
    Given the rule "commission.new_logo" changed:
      | field          | value      |
      | effective_from | 2026-01-01 |
      | when           |            |
      | action.type    | draw       |
      | action.rate    |            |
      | action.base    |            |
      | action.amount  | 3000       |
      | action.periods | 3          |
    When the compensation run for "2026-02" is made
    # 3% of 40,000 = 1,200.00 earned: 1,800.00 drawn
    Then "E1" receives a "commission.new_logo" commission of 1800.00 payable
    And "E1" receives a "commission.tiered" commission of 1200.00 payable
