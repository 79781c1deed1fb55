from checkin import create_app

app = create_app()
