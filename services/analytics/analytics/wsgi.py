from analytics import create_app

app = create_app()
