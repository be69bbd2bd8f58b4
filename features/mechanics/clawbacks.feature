Feature: Clawbacks (action.clawback)
  An amount rule may claw back what it paid: when the collection ratio (cash collected
  over contract value signed) of a later period, within the number of periods the rule
  sets, falls below its line, that period takes back the rule's share of each payment of
  the periods before it, as a negative line (rule key clawback) naming the rule and the
  period it corrects. A payment is never clawed back beyond that share, and only the
  approved or locked runs of earlier periods count, so a re-run claws back nothing twice.
  Here the new-logo commission (1% of revenue from new customers) claws back.

  Background:
    Given employee "E1" at level "S2" in team "North"

  Scenario Outline: A low collection ratio claws back the month before
    Given the rule "commission.new_logo" changed:
      | field                  | value |
      | action.clawback.below  | 0.5   |
      | action.clawback.within | 2     |
    And the results:
      | period  | employee | quota  | revenue_new | signed_amount | collected_amount |
      | 2026-01 | E1       | 100000 | 50000       | 40000         | 40000            |
      | 2026-02 | E1       | 100000 | 0           | 40000         | <collected>      |
    And the compensation run for "2026-01" was made and approved
    When the compensation run for "2026-02" is made
    Then "E1" receives <what>

    Examples:
      | case               | collected | what                                               |
      | 40% collected      | 16000     | a "clawback" commission of -500.00 payable         |
      | just below the line| 19999.99  | a "clawback" commission of -500.00 payable         |
      | exactly the line   | 20000     | no "clawback" commission                           |

  Scenario: A share is clawed back once, never more
    Given the rule "commission.new_logo" changed:
      | field                  | value |
      | action.clawback.below  | 0.5   |
      | action.clawback.within | 3     |
      | action.clawback.share  | 0.5   |
    And the results:
      | period  | employee | quota  | revenue_new | signed_amount | collected_amount |
      | 2026-01 | E1       | 100000 | 50000       | 40000         | 40000            |
      | 2026-02 | E1       | 100000 | 0           | 40000         | 16000            |
      | 2026-03 | E1       | 100000 | 0           | 40000         | 8000             |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and locked
    When the compensation run for "2026-03" is made
    # February took back 250.00 of the 500.00: half is all the rule allows
    Then "E1" receives no "clawback" commission

  Scenario: A re-run claws back nothing twice
    Given the rule "commission.new_logo" changed:
      | field                  | value |
      | action.clawback.below  | 0.5   |
      | action.clawback.within | 3     |
    And the results:
      | period  | employee | quota  | revenue_new | signed_amount | collected_amount |
      | 2026-01 | E1       | 100000 | 50000       | 40000         | 40000            |
      | 2026-02 | E1       | 100000 | 0           | 40000         | 16000            |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    When the compensation run for "2026-02" is made
    Then "E1" receives a "clawback" commission of -500.00 payable

  Scenario: A payment older than the periods the rule looks back on stays
    Given the rule "commission.new_logo" changed:
      | field                  | value |
      | action.clawback.below  | 0.5   |
      | action.clawback.within | 1     |
    And the results:
      | period  | employee | quota  | revenue_new | signed_amount | collected_amount |
      | 2026-01 | E1       | 100000 | 50000       | 40000         | 40000            |
      | 2026-03 | E1       | 100000 | 0           | 40000         | 16000            |
    And the compensation run for "2026-01" was made and approved
    When the compensation run for "2026-03" is made
    Then "E1" receives no "clawback" commission
