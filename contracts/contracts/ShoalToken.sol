// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title ShoalToken
/// @notice The ERC-20 that Shoal's delivery is paid in. Publishers deposit it into the
///         PublisherEscrow; node operators claim it from the RewardDistributor.
/// @dev 18 decimals, EIP-2612 permits, minting restricted to MINTER_ROLE.
contract ShoalToken is ERC20, ERC20Permit, AccessControl {
    /// @notice Role allowed to mint new tokens.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants and revokes MINTER_ROLE).
    constructor(address admin) ERC20("Shoal", "SHOAL") ERC20Permit("Shoal") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Mints `amount` tokens to `to`.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Always 18.
    function decimals() public pure override returns (uint8) {
        return 18;
    }
}
