Feature: Funnel warning line (alert.funnel)
  A salesperson who received at least 20 leads in the month but turned fewer than 30% of
  them into opportunities gets a "low" alert: the acquisition channel needs work.
  With fewer leads, or without any leads figure, there is nothing to judge.

  Background:
    Given employee "E1" at level "S1" in team "North"

  Scenario Outline: At least 20 leads and under 30% turned into opportunities
    Given the results for "2026-01":
      | employee | leads   | opportunities   |
      | E1       | <leads> | <opportunities> |
    When the compensation run for "2026-01" is made
    Then "E1" gets the alert "alert.funnel" valued "low"

    Examples:
      | case                   | leads | opportunities |
      | 25% of 20 leads        | 20    | 5             |
      | none of 20 leads       | 20    | 0             |
      | 29.5% of 200 leads     | 200   | 59            |

  Scenario Outline: No alert
    Given the results for "2026-01":
      | employee | leads   | opportunities   |
      | E1       | <leads> | <opportunities> |
    When the compensation run for "2026-01" is made
    Then "E1" has no "alert.funnel" outcome

    Examples:
      | case                          | leads | opportunities |
      | exactly 30% of 20 leads       | 20    | 6             |
      | 30% of 200 leads              | 200   | 60            |
      | 19 leads, none converted      | 19    | 0             |
      | no leads                      | 0     | 0             |
      | leads not reported            |       | 3             |
