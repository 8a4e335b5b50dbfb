@external
Feature: Strangers on the internet are stopped at Cloudflare
  The public hostname is reachable only through Cloudflare Access. A visitor without an Access login or an
  Access service token is sent to the Access login page or refused, even when it carries a valid Immich API key,
  and nothing of the request reaches the node.

  Scenario Outline: An unauthenticated <visitor> is kept out
    When an unauthenticated <visitor> requests "<path>" on the public hostname
    Then the answer is a refusal or a redirect to the Access login on the team domain

    Examples:
      | visitor    | path             |
      | browser    | /photos          |
      | browser    | /api/users/me    |
      | API client | /api/users/me    |
      | API client | /api/server/ping |

  Scenario Outline: An unauthenticated <visitor> leaves no trace on the node
    When an unauthenticated <visitor> requests "<path>" on the public hostname
    Then neither the origin proxy nor Immich saw the request

    Examples:
      | visitor    | path             |
      | browser    | /photos          |
      | API client | /api/users/me    |

  Scenario: A client with an Access service token is let through
    When an API client with the suite's service token asks who it is on the public hostname
    Then Immich answers with the suite's user

  Scenario: What Access lets through is seen by the origin proxy and Immich
    When an API client with the suite's service token asks who it is on the public hostname
    Then both the origin proxy and Immich saw the request
