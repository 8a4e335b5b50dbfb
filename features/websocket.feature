@websocket
Feature: Live updates reach the app through the public hostname
  Immich pushes live updates to the app over a websocket (socket.io at /api/socket.io), through Cloudflare and the
  origin proxy like every other request.

  Scenario: The live-update socket opens with Access credentials
    When the app opens the live-update socket through the public hostname with the suite's service token
    Then the socket opens and the server announces its version

  Scenario: The live-update socket is refused without Access credentials
    When the app opens the live-update socket through the public hostname without Access credentials
    Then the socket is refused
