@dns
Feature: At home the public hostname leads straight to the node
  Split-horizon DNS: on the LAN the public hostname resolves to the node's own address, so the app at home talks to
  Immich over the LAN; from the internet it resolves to Cloudflare, never to a private address.

  Scenario: The public hostname resolves as expected for the side the suite runs on
    When the suite resolves the public hostname
    Then on the LAN it is the node's address, and from the internet it is no private address
