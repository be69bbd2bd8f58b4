"""The back office (Flask, Flask-Admin) and the ``laurel`` command line. Thin: it calls engine/."""
