Feature: Paid in part on signing, the rest once collected (action.on_signing)
  An amount rule may pay a share of its amount in the period (after its floor and caps)
  and hold the rest until the cash is collected: the first later period whose collection
  ratio (cash collected over contract value signed) reaches the rule's line pays it, as a
  line of rule key collected_release naming the rule and the period it comes from. Only
  the approved or locked runs of earlier periods count, so a part is paid once.
  Here the new-logo commission (1% of revenue from new customers) pays 60% on signing.

  Background:
    Given employee "E1" at level "S2" in team "North"
    And the rule "commission.new_logo" changed:
      | field                        | value |
      | action.on_signing.share      | 0.6   |
      | action.on_signing.release_at | 0.9   |
    And the results:
      | period  | employee | quota  | revenue_new | signed_amount | collected_amount |
      | 2026-01 | E1       | 100000 | 50000       | 40000         | 10000            |
      | 2026-02 | E1       | 100000 |             | 40000         | 35999.99         |
      | 2026-03 | E1       | 100000 |             | 40000         | 36000            |
      | 2026-04 | E1       | 100000 |             | 40000         | 40000            |

  Scenario: 60% of the commission is paid on signing
    When the compensation run for "2026-01" is made
    # 1% of 50,000 = 500.00: 300.00 now, 200.00 held until collected
    Then "E1" receives a "commission.new_logo" commission of 300.00 payable

  Scenario: The rest waits while the collection ratio stays below the line
    Given the compensation run for "2026-01" was made and approved
    When the compensation run for "2026-02" is made
    Then "E1" receives no "collected_release" commission

  Scenario: The rest is paid once the collection ratio reaches the line
    Given the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    When the compensation run for "2026-03" is made
    Then "E1" receives a "collected_release" commission of 200.00 payable

  Scenario: A re-run of the month pays the part once
    Given the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    And the compensation run for "2026-03" was made and approved
    When the compensation run for "2026-03" is made
    Then "E1" receives a "collected_release" commission of 200.00 payable

  Scenario: A part paid in an approved month is not paid again
    Given the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-03" was made and approved
    When the compensation run for "2026-04" is made
    Then "E1" receives no "collected_release" commission
