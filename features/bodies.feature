@bodies
Feature: Uploads larger than Cloudflare allows never get in from the internet
  Cloudflare caps request bodies at 100 MB, held here as 104,857,600 bytes (100 MiB; "MB" below means the same), and
  the origin proxy holds the same limit. On the LAN there is no such cap: that is why large videos are uploaded at home.

  Scenario: A body of exactly the limit is accepted through the public hostname
    When the suite uploads a photo whose request body is 104857600 bytes through the public hostname
    Then the upload is accepted

  Scenario: One byte over the limit is refused through the public hostname
    When the suite uploads a photo whose request body is 104857601 bytes through the public hostname
    Then the upload is refused with 413
    And no asset and no file remain from it

  Scenario: A streamed body that grows past the limit is refused and leaves nothing behind
    When the suite streams a 110 MB upload without announcing its size through the public hostname
    Then the upload is refused
    And no asset and no file remain from it

  Scenario: On the LAN a body over the limit is accepted
    When the suite uploads a photo whose request body is 115343360 bytes over the LAN
    Then the upload is accepted
    And the file Immich reports lies on the NAS with the same SHA-1, byte for byte
