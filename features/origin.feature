@origin
Feature: The origin proxy lets in only what passed Cloudflare Access
  cloudflared delivers requests from the tunnel to the origin proxy. Should anything reach the proxy without having
  passed Access (a misrouted tunnel, another pod), the proxy refuses it unless it carries a valid Access token.

  Scenario Outline: A request with <token> is refused at the proxy
    When a request with <token> reaches the origin proxy
    Then the proxy refuses it with 403
    And Immich did not see the request

    Examples:
      | token                           |
      | no Access token                 |
      | a forged token                  |
      | an expired token                |
      | a not-yet-valid token           |
      | a token for another application |
      | a token from another team       |
      | an unsigned token               |

  Scenario: A request with a valid Access token is served
    When a request with a valid Access token reaches the origin proxy
    Then Immich answers it
