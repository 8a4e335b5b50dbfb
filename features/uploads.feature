@uploads
Feature: Uploaded photos land on the NAS, byte for byte
  Immich keeps originals under its media location, which is the NAS. An upload is safe only once its bytes are on
  the NAS with the checksum Immich reports. Every photo the suite uploads is unique to the run and deleted at the end.

  Scenario Outline: A photo uploaded over <path> lands on the NAS
    When the suite uploads a new photo over <path>
    Then Immich reports it created
    And the file Immich reports lies on the NAS with the same SHA-1, byte for byte

    Examples:
      | path                |
      | the LAN             |
      | the public hostname |

  Scenario: Uploading the same photo again adds nothing
    Given the suite uploaded a new photo over the LAN
    When the suite uploads the same photo again over the LAN
    Then Immich reports it a duplicate of the first
    And no new file appeared on the NAS
