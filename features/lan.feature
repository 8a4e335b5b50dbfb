@lan
Feature: Household devices reach Immich on the LAN
  On the LAN, and over the VPN, the Immich server answers on its NodePort directly.
  Cloudflare is not involved there: Immich's own login is the guard.

  Scenario: The server answers on the NodePort
    When a device on the LAN pings the server
    Then the server answers "pong"

  Scenario: The API refuses a device without credentials
    When a device on the LAN asks who it is without credentials
    Then Immich itself refuses it with 401 "Authentication required"

  Scenario: The API serves a device with an API key
    When a device on the LAN asks who it is with the suite's API key
    Then Immich answers with the suite's user

  Scenario: The mobile app can discover the API
    When a device on the LAN fetches "/.well-known/immich"
    Then it is pointed at the API endpoint "/api"
