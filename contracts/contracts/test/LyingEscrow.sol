// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title LyingEscrow (test only)
/// @notice Pretends to debit publishers but sends nothing, to show that the
///         RewardDistributor refuses a root the money has not arrived for.
contract LyingEscrow {
    IERC20 public immutable token;

    constructor(IERC20 token_) {
        token = token_;
    }

    function debitMany(address[] calldata, uint256[] calldata amounts) external pure returns (uint256 total) {
        for (uint256 i = 0; i < amounts.length; ++i) {
            total += amounts[i];
        }
    }
}
